-- Version 6: where applying the intake log has reached (ADR 0014). The committer sets it in the
-- same transaction as the observations it applies, so on open every record at or after it is
-- applied again (the observations' unique constraint stores a record applied twice once).
CREATE TABLE intake_applied (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    next INTEGER NOT NULL CHECK (next >= 0)
) STRICT;
INSERT INTO intake_applied (id, next) VALUES (0, 0);
