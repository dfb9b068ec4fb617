-- What iRedMail's installer loads into iRedAPD's database after the tables
-- (both engines): greylisting on for everyone, and a few sender domains
-- whose SPF/MX hosts the cron job whitelists.
INSERT INTO greylisting (account, priority, sender, sender_priority, active) VALUES ('@.', 0, '@.', 0, 1);
INSERT INTO greylisting_whitelist_domains (domain) VALUES ('gmail.com');
INSERT INTO greylisting_whitelist_domains (domain) VALUES ('outlook.com');
INSERT INTO greylisting_whitelist_domains (domain) VALUES ('yahoo.com');
