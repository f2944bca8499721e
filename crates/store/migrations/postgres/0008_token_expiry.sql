-- API tokens may expire, and may be revoked before; both are kept (not
-- deleted) so `mailferry token list` can say what became of a token.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
