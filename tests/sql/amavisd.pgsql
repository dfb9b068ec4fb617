-- Amavisd's database as an iRedMail server has it (PostgreSQL).
-- Written for the tests from the column lists of iRedMail's amavisd schema
-- (docs: iredmail-sql-model.md section 3); tables, columns, types and keys
-- as there, triggers left out.

-- Policy lookup tables ------------------------------------------------------

CREATE TABLE policy (
    id                      SERIAL PRIMARY KEY,
    policy_name             VARCHAR(255),
    virus_lover             CHAR(1) DEFAULT NULL,
    spam_lover              CHAR(1) DEFAULT NULL,
    unchecked_lover         CHAR(1) DEFAULT NULL,
    banned_files_lover      CHAR(1) DEFAULT NULL,
    bad_header_lover        CHAR(1) DEFAULT NULL,
    bypass_virus_checks     CHAR(1) DEFAULT NULL,
    bypass_spam_checks      CHAR(1) DEFAULT NULL,
    bypass_banned_checks    CHAR(1) DEFAULT NULL,
    bypass_header_checks    CHAR(1) DEFAULT NULL,
    virus_quarantine_to     VARCHAR(64) DEFAULT NULL,
    spam_quarantine_to      VARCHAR(64) DEFAULT NULL,
    banned_quarantine_to    VARCHAR(64) DEFAULT NULL,
    unchecked_quarantine_to VARCHAR(64) DEFAULT NULL,
    bad_header_quarantine_to VARCHAR(64) DEFAULT NULL,
    clean_quarantine_to     VARCHAR(64) DEFAULT NULL,
    archive_quarantine_to   VARCHAR(64) DEFAULT NULL,
    spam_tag_level          REAL DEFAULT NULL,
    spam_tag2_level         REAL DEFAULT NULL,
    spam_tag3_level         REAL DEFAULT NULL,
    spam_kill_level         REAL DEFAULT NULL,
    spam_dsn_cutoff_level   REAL DEFAULT NULL,
    spam_quarantine_cutoff_level REAL DEFAULT NULL,
    addr_extension_virus    VARCHAR(64) DEFAULT NULL,
    addr_extension_spam     VARCHAR(64) DEFAULT NULL,
    addr_extension_banned   VARCHAR(64) DEFAULT NULL,
    addr_extension_bad_header VARCHAR(64) DEFAULT NULL,
    warnvirusrecip          CHAR(1) DEFAULT NULL,
    warnbannedrecip         CHAR(1) DEFAULT NULL,
    warnbadhrecip           CHAR(1) DEFAULT NULL,
    newvirus_admin          VARCHAR(64) DEFAULT NULL,
    virus_admin             VARCHAR(64) DEFAULT NULL,
    banned_admin            VARCHAR(64) DEFAULT NULL,
    bad_header_admin        VARCHAR(64) DEFAULT NULL,
    spam_admin              VARCHAR(64) DEFAULT NULL,
    spam_subject_tag        VARCHAR(64) DEFAULT NULL,
    spam_subject_tag2       VARCHAR(64) DEFAULT NULL,
    spam_subject_tag3       VARCHAR(64) DEFAULT NULL,
    message_size_limit      INTEGER DEFAULT NULL,
    banned_rulenames        VARCHAR(64) DEFAULT NULL,
    disclaimer_options      VARCHAR(64) DEFAULT NULL,
    forward_method          VARCHAR(64) DEFAULT NULL,
    sa_userconf             VARCHAR(64) DEFAULT NULL,
    sa_username             VARCHAR(64) DEFAULT NULL
);
CREATE UNIQUE INDEX policy_idx_policy_name ON policy (policy_name);

CREATE TABLE users (
    id          SERIAL PRIMARY KEY,
    priority    INTEGER NOT NULL DEFAULT 7,
    policy_id   INTEGER NOT NULL DEFAULT 1 CHECK (policy_id >= 0),
    email       BYTEA NOT NULL,
    fullname    VARCHAR(255) DEFAULT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE mailaddr (
    id          SERIAL PRIMARY KEY,
    priority    INTEGER NOT NULL DEFAULT 7,
    email       BYTEA NOT NULL,
    CONSTRAINT mailaddr_email_key UNIQUE (email)
);

CREATE TABLE wblist (
    rid         INTEGER NOT NULL CHECK (rid >= 0),
    sid         INTEGER NOT NULL CHECK (sid >= 0),
    wb          VARCHAR(10) NOT NULL,
    PRIMARY KEY (rid, sid)
);

CREATE TABLE outbound_wblist (
    rid         INTEGER NOT NULL CHECK (rid >= 0),
    sid         INTEGER NOT NULL CHECK (sid >= 0),
    wb          VARCHAR(10) NOT NULL,
    PRIMARY KEY (rid, sid)
);

-- Storage tables (logged and quarantined mail) --------------------------------

CREATE TABLE maddr (
    partition_tag INTEGER DEFAULT 0,
    id          SERIAL PRIMARY KEY,
    email       BYTEA NOT NULL,
    email_raw   VARCHAR(255) NOT NULL DEFAULT '',
    domain      BYTEA NOT NULL,
    CONSTRAINT part_email UNIQUE (partition_tag, email)
);
CREATE INDEX maddr_idx_email ON maddr (email);
CREATE INDEX maddr_idx_email_raw ON maddr (email_raw);
CREATE INDEX maddr_idx_domain ON maddr (domain);

CREATE TABLE msgs (
    partition_tag INTEGER DEFAULT 0,
    mail_id     BYTEA NOT NULL,
    secret_id   BYTEA DEFAULT '',
    am_id       VARCHAR(20) NOT NULL,
    time_num    INTEGER NOT NULL CHECK (time_num >= 0),
    time_iso    TIMESTAMP WITH TIME ZONE NOT NULL,
    sid         INTEGER NOT NULL CHECK (sid >= 0),
    policy      VARCHAR(255) DEFAULT '',
    client_addr VARCHAR(255) DEFAULT '',
    size        INTEGER NOT NULL CHECK (size >= 0),
    originating CHAR(1) DEFAULT ' ' NOT NULL,
    content     CHAR(1),
    quar_type   CHAR(1),
    quar_loc    VARCHAR(255) DEFAULT '',
    dsn_sent    CHAR(1),
    spam_level  REAL,
    message_id  VARCHAR(255) DEFAULT '',
    from_addr   BYTEA DEFAULT '',
    subject     BYTEA DEFAULT '',
    host        VARCHAR(255) NOT NULL,
    PRIMARY KEY (partition_tag, mail_id)
);
CREATE INDEX msgs_idx_sid ON msgs (sid);
CREATE INDEX msgs_idx_mess_id ON msgs (message_id);
CREATE INDEX msgs_idx_time_num ON msgs (time_num);
CREATE INDEX msgs_idx_mail_id ON msgs (mail_id);
CREATE INDEX msgs_idx_content ON msgs (content);
CREATE INDEX msgs_idx_quar_type ON msgs (quar_type);
CREATE INDEX msgs_idx_spam_level ON msgs (spam_level);
CREATE INDEX msgs_idx_time_iso ON msgs (time_iso);

CREATE TABLE msgrcpt (
    partition_tag INTEGER DEFAULT 0,
    mail_id     BYTEA NOT NULL,
    rseqnum     INTEGER DEFAULT 0 NOT NULL,
    rid         INTEGER NOT NULL CHECK (rid >= 0),
    is_local    CHAR(1) DEFAULT ' ' NOT NULL,
    content     CHAR(1) DEFAULT ' ' NOT NULL,
    ds          CHAR(1) NOT NULL,
    rs          CHAR(1) NOT NULL,
    bl          CHAR(1) DEFAULT ' ',
    wl          CHAR(1) DEFAULT ' ',
    bspam_level REAL,
    smtp_resp   VARCHAR(255) DEFAULT '',
    PRIMARY KEY (partition_tag, mail_id, rseqnum)
);
CREATE INDEX msgrcpt_idx_mail_id ON msgrcpt (mail_id);
CREATE INDEX msgrcpt_idx_rid ON msgrcpt (rid);

CREATE TABLE quarantine (
    partition_tag INTEGER DEFAULT 0,
    mail_id     BYTEA NOT NULL,
    chunk_ind   INTEGER NOT NULL CHECK (chunk_ind >= 0),
    mail_text   BYTEA NOT NULL,
    PRIMARY KEY (partition_tag, mail_id, chunk_ind)
);
