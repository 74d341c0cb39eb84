"""What is due and when: the plan of a run (``plan``), its execution (``runner``), request budgets
(``budget``) and the collected channel set (``channel_set``)."""
