-- IMAP importers saved with `"auth": "xoauth2"` before XOAUTH2 was built
-- carry no Entra app, so they cannot be read as XOAUTH2 importers (which
-- now hold the app's fields) and would make the client's importer list
-- unreadable. They never imported (the old build skipped them), so they
-- become password importers without a password: runs say "enter the IMAP
-- password", and an admin chooses auth xoauth2 again with the app's fields.
UPDATE importers
SET settings = replace(settings, '"auth":"xoauth2"', '"auth":"password"')
WHERE settings LIKE '%"auth":"xoauth2"%';
