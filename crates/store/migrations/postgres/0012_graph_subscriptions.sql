-- An importer's change-notification subscription on its Inbox (Graph):
-- the id Graph gave it, when it expires, and a hash of the clientState
-- every notification must carry (the value itself is only ever sent).
CREATE TABLE graph_subscriptions (
    importer_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL UNIQUE,
    client_state_sha256 TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
