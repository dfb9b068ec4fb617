-- iRedAPD's database (PostgreSQL), version 5.x / 6.x with all updates.
-- Written for the tests from the column lists in iredmail-sql-model.md
-- section 1: tables, columns, types and keys as there (note: no UNIQUE
-- (account, kind) on throttle, VARCHAR(255) greylisting columns).

CREATE TABLE throttle (
    id          SERIAL PRIMARY KEY,
    account     VARCHAR(255) NOT NULL,
    kind        VARCHAR(10) NOT NULL DEFAULT 'outbound',
    priority    BIGINT NOT NULL DEFAULT 0,
    period      BIGINT NOT NULL DEFAULT 0,
    msg_size    BIGINT NOT NULL DEFAULT -1,
    max_msgs    BIGINT NOT NULL DEFAULT -1,
    max_quota   BIGINT NOT NULL DEFAULT -1,
    max_rcpts   BIGINT NOT NULL DEFAULT -1
);
CREATE INDEX idx_account ON throttle (account);

CREATE TABLE throttle_tracking (
    id          SERIAL PRIMARY KEY,
    tid         BIGINT REFERENCES throttle (id),
    account     VARCHAR(255) NOT NULL DEFAULT '',
    period      BIGINT NOT NULL DEFAULT 0,
    cur_msgs    BIGINT NOT NULL DEFAULT 0,
    cur_quota   BIGINT NOT NULL DEFAULT 0,
    init_time   BIGINT NOT NULL DEFAULT 0,
    last_time   BIGINT NOT NULL DEFAULT 0,
    last_notify_time BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX idx_tid_account ON throttle_tracking (tid, account);

CREATE TABLE greylisting (
    id          SERIAL PRIMARY KEY,
    account     VARCHAR(255) NOT NULL DEFAULT '',
    priority    SMALLINT NOT NULL DEFAULT 0,
    sender      VARCHAR(255) NOT NULL DEFAULT '',
    sender_priority SMALLINT NOT NULL DEFAULT 0,
    comment     VARCHAR(255) NOT NULL DEFAULT '',
    active      SMALLINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX idx_greylisting_account_sender ON greylisting (account, sender);
CREATE INDEX idx_greylisting_comment ON greylisting (comment);

CREATE TABLE greylisting_whitelists (
    id          SERIAL PRIMARY KEY,
    account     VARCHAR(255) NOT NULL DEFAULT '',
    sender      VARCHAR(255) NOT NULL DEFAULT '',
    comment     VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_greylisting_whitelists_account_sender ON greylisting_whitelists (account, sender);
CREATE INDEX idx_greylisting_whitelists_comment ON greylisting_whitelists (comment);

CREATE TABLE greylisting_whitelist_domain_spf (
    id          SERIAL PRIMARY KEY,
    account     VARCHAR(255) NOT NULL DEFAULT '',
    sender      VARCHAR(255) NOT NULL DEFAULT '',
    comment     VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_greylisting_whitelist_domain_spf_account_sender
    ON greylisting_whitelist_domain_spf (account, sender);
CREATE INDEX idx_greylisting_whitelist_domain_spf_comment ON greylisting_whitelist_domain_spf (comment);

CREATE TABLE greylisting_whitelist_domains (
    id          SERIAL PRIMARY KEY,
    domain      VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_greylisting_whitelist_domains_domain ON greylisting_whitelist_domains (domain);

CREATE TABLE greylisting_tracking (
    id          SERIAL PRIMARY KEY,
    sender      VARCHAR(255) NOT NULL,
    recipient   VARCHAR(255) NOT NULL,
    client_address VARCHAR(40) NOT NULL,
    sender_domain VARCHAR(255) NOT NULL DEFAULT '',
    rcpt_domain VARCHAR(255) NOT NULL DEFAULT '',
    init_time   BIGINT NOT NULL DEFAULT 0,
    block_expired BIGINT NOT NULL DEFAULT 0,
    record_expired BIGINT NOT NULL DEFAULT 0,
    blocked_count BIGINT NOT NULL DEFAULT 0,
    passed      SMALLINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_greylisting_tracking_triplet ON greylisting_tracking (sender, recipient, client_address);
CREATE INDEX idx_greylisting_tracking_sender_domain ON greylisting_tracking (sender_domain);
CREATE INDEX idx_greylisting_tracking_rcpt_domain ON greylisting_tracking (rcpt_domain);
CREATE INDEX idx_greylisting_tracking_client_address_passed ON greylisting_tracking (client_address, passed);

CREATE TABLE wblist_rdns (
    id          SERIAL PRIMARY KEY,
    rdns        VARCHAR(255) NOT NULL DEFAULT '',
    wb          VARCHAR(10) NOT NULL DEFAULT 'B'
);
CREATE UNIQUE INDEX idx_wblist_rdns_rdns ON wblist_rdns (rdns);
CREATE INDEX idx_wblist_rdns_wb ON wblist_rdns (wb);

CREATE TABLE srs_exclude_domains (
    id          SERIAL PRIMARY KEY,
    domain      VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_srs_exclude_domains_domain ON srs_exclude_domains (domain);

CREATE TABLE senderscore_cache (
    client_address VARCHAR(40) NOT NULL DEFAULT '' PRIMARY KEY,
    score       INT DEFAULT 0,
    time        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX idx_senderscore_cache_score ON senderscore_cache (score);
CREATE INDEX idx_senderscore_cache_time ON senderscore_cache (time);

CREATE TABLE smtp_sessions (
    id          SERIAL PRIMARY KEY,
    time        TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    time_num    BIGINT NOT NULL DEFAULT 0,
    action      VARCHAR(20) NOT NULL DEFAULT '',
    reason      VARCHAR(255) NOT NULL DEFAULT '',
    instance    VARCHAR(40) NOT NULL DEFAULT '',
    client_address VARCHAR(40) NOT NULL DEFAULT '',
    client_name VARCHAR(255) NOT NULL DEFAULT '',
    reverse_client_name VARCHAR(255) NOT NULL DEFAULT '',
    helo_name   VARCHAR(255) NOT NULL DEFAULT '',
    sender      VARCHAR(255) NOT NULL DEFAULT '',
    sender_domain VARCHAR(255) NOT NULL DEFAULT '',
    sasl_username VARCHAR(255) NOT NULL DEFAULT '',
    sasl_domain VARCHAR(255) NOT NULL DEFAULT '',
    recipient   VARCHAR(255) NOT NULL DEFAULT '',
    recipient_domain VARCHAR(255) NOT NULL DEFAULT '',
    encryption_protocol VARCHAR(20) NOT NULL DEFAULT '',
    encryption_cipher VARCHAR(50) NOT NULL DEFAULT '',
    server_address VARCHAR(40) NOT NULL DEFAULT '',
    server_port VARCHAR(10) NOT NULL DEFAULT ''
);
CREATE INDEX idx_smtp_sessions_time ON smtp_sessions (time);
CREATE INDEX idx_smtp_sessions_time_num ON smtp_sessions (time_num);
CREATE INDEX idx_smtp_sessions_action ON smtp_sessions (action);
CREATE INDEX idx_smtp_sessions_client_address ON smtp_sessions (client_address);
CREATE INDEX idx_smtp_sessions_sender ON smtp_sessions (sender);
CREATE INDEX idx_smtp_sessions_sasl_username ON smtp_sessions (sasl_username);
CREATE INDEX idx_smtp_sessions_recipient ON smtp_sessions (recipient);
