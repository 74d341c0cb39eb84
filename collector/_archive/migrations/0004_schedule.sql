-- 0004: what scheduled runs (`tgspread run`) keep: the requests each run sent by kind, which is how
-- the hourly resolve budget spans runs, and each run's plan and budget for the record.

-- Requests a run sent, by TL method name (e.g. 'contacts.ResolveUsername'); `run_at` is the run's clock
-- (runs.started_at). Updated as the run goes, so a killed run still counts what it sent.
CREATE TABLE run_requests (
    run_id              BIGINT NOT NULL,
    request             VARCHAR NOT NULL,
    run_at              TIMESTAMPTZ NOT NULL,
    requests            BIGINT NOT NULL,
    PRIMARY KEY (run_id, request)
);

-- One row per `tgspread run` that collected something: what was due, what the budget allowed.
CREATE TABLE run_schedule (
    run_id              BIGINT PRIMARY KEY,
    started_at          TIMESTAMPTZ NOT NULL,
    channels_due        BIGINT NOT NULL,   -- started by this run
    channels_skipped    BIGINT NOT NULL,   -- due, but blocked by a flood wait or the resolve budget
    channels_not_due    BIGINT NOT NULL,
    max_requests        BIGINT NOT NULL,
    resolves_allowed    BIGINT NOT NULL,   -- what was left of [run] max_resolves_per_hour
    requests            BIGINT NOT NULL,   -- sent (as counted by the budget)
    budget_exhausted    VARCHAR,           -- why the budget stopped the run early (NULL: it did not)
    next_due_at         TIMESTAMPTZ        -- when the next run has something to do
);
