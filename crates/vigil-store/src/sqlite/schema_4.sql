-- Version 4: how far each SIEM sink's export has got, so that export resumes after a restart
-- or a crash instead of losing the alerts that were waiting in memory.
-- delivered_through: the highest alert id the sink has finished with (delivered, or given up
-- for good); a sink takes alerts in id order, so every lower id is finished too.
CREATE TABLE export_cursors (
    sink              TEXT PRIMARY KEY,
    delivered_through INTEGER NOT NULL
) STRICT;
