-- gatehouse's store on PostgreSQL: every tree of the embedded store as rows of
-- one table (tree code, key, value), and the log of committed write sets that
-- other daemons follow to keep their in-memory mirror in step.

CREATE TABLE gh_entries (
    tree smallint NOT NULL CHECK (tree >= 0),
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tree, key)
);

-- One row per committed unit of work, numbered without gaps under the
-- writer lock; holds the writes to the mirrored trees.
CREATE TABLE gh_commits (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    writes bytea NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- A row per daemon, written by the synchronous commit that flushes the WAL
-- for everything this daemon committed before (units commit without waiting
-- for the flush; a commit that wrote nothing would not wait for it either).
CREATE TABLE gh_flush (
    holder text PRIMARY KEY,
    flushes bigint NOT NULL
);

-- Failed sign-ins shared by every daemon: the lockout holds whichever daemon
-- a client reaches. Keys are digests; times are Unix seconds of the
-- directory's clock.
CREATE TABLE gh_signin_failures (
    key bytea PRIMARY KEY,
    failures integer NOT NULL CHECK (failures >= 0),
    last_failure bigint NOT NULL,
    -- When a success forgave the failures (what daemons counted before it
    -- is forgiven too).
    forgiven_at bigint
);
CREATE INDEX gh_signin_failures_last ON gh_signin_failures (last_failure);

-- Bytes and files held by uploads in progress, per user and daemon, so
-- uploads of one user on several daemons stay within the quota together. A
-- daemon renews its holds while it lives; holds not renewed are dead.
CREATE TABLE gh_quota_holds (
    user_id bigint NOT NULL,
    holder text NOT NULL,
    bytes bigint NOT NULL CHECK (bytes >= 0),
    files bigint NOT NULL CHECK (files >= 0),
    -- The holder's own count of its writes: an older write never replaces
    -- a newer one, whatever order they reach the database in.
    version bigint NOT NULL,
    renewed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, holder)
);

-- Where `gatehouse migrate-store` got to in each tree of the sled store it
-- copies, so a copy that stopped resumes there.
CREATE TABLE gh_copy_progress (
    tree smallint PRIMARY KEY,
    last_key bytea NOT NULL
);
