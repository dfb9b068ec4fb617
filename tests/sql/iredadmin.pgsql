-- iRedAdmin's own database (PostgreSQL) for the OpenLDAP backend, with
-- used_quota and last_login.  Written for the tests from the column lists
-- in iredmail-sql-model.md section 4 (the PostgreSQL schema has no
-- deleted_mailboxes and no index on log.admin).  NONE of iredldap's own
-- tables (api_tokens ...).

CREATE TABLE sessions (
    session_id CHAR(128) UNIQUE NOT NULL,
    atime TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    data TEXT
);

CREATE TABLE log (
    id SERIAL PRIMARY KEY,
    timestamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    admin VARCHAR(255) NOT NULL,
    ip VARCHAR(40) NOT NULL,
    domain VARCHAR(255) NOT NULL DEFAULT '',
    username VARCHAR(255) NOT NULL DEFAULT '',
    event VARCHAR(20) NOT NULL DEFAULT '',
    loglevel VARCHAR(10) NOT NULL DEFAULT 'info',
    msg TEXT
);
CREATE INDEX idx_log_timestamp ON log (timestamp);
CREATE INDEX idx_log_ip ON log (ip);
CREATE INDEX idx_log_domain ON log (domain);
CREATE INDEX idx_log_username ON log (username);
CREATE INDEX idx_log_event ON log (event);
CREATE INDEX idx_log_loglevel ON log (loglevel);

CREATE TABLE updatelog (
    date DATE NOT NULL PRIMARY KEY
);

CREATE TABLE tracking (
    id SERIAL PRIMARY KEY,
    k VARCHAR(255) NOT NULL,
    v TEXT,
    time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX idx_tracking_k ON tracking (k);

CREATE TABLE settings (
    id SERIAL PRIMARY KEY,
    account VARCHAR(255) NOT NULL DEFAULT 'global',
    k VARCHAR(255) NOT NULL,
    v TEXT
);
CREATE UNIQUE INDEX idx_settings_account_k ON settings (account, k);

CREATE TABLE used_quota (
    username VARCHAR(255) NOT NULL PRIMARY KEY,
    bytes BIGINT NOT NULL DEFAULT 0,
    messages BIGINT NOT NULL DEFAULT 0,
    domain VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE INDEX idx_used_quota_domain ON used_quota (domain);

CREATE TABLE last_login (
    username VARCHAR(255) NOT NULL DEFAULT '' PRIMARY KEY,
    domain VARCHAR(255) NOT NULL DEFAULT '',
    imap INTEGER DEFAULT NULL,
    pop3 INTEGER DEFAULT NULL,
    lda INTEGER DEFAULT NULL
);
CREATE INDEX idx_last_login_domain ON last_login (domain);
