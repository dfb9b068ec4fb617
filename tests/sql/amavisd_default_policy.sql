-- The server-wide spam policy iRedMail's installer loads (both engines):
-- spam and bad headers delivered (tagged), viruses and banned files
-- quarantined.  Written for the tests from iredmail-sql-model.md 3.3.
INSERT INTO policy (policy_name, spam_lover, virus_lover, banned_files_lover, bad_header_lover,
                    bypass_spam_checks, bypass_virus_checks, bypass_banned_checks, bypass_header_checks,
                    spam_quarantine_to, virus_quarantine_to, banned_quarantine_to, bad_header_quarantine_to)
    VALUES ('@.', 'Y', 'N', 'N', 'Y', 'N', 'N', 'N', 'N', '', 'virus-quarantine', 'banned-quarantine', '');
INSERT INTO users (priority, email, policy_id) VALUES (0, '@.', 0);
UPDATE users SET policy_id = (SELECT id FROM policy WHERE policy_name = '@.') WHERE email = '@.';
