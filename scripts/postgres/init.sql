-- The databases walletun's services own, each with the role its service connects as: the role owns
-- its database and is the only one (superusers aside) that may connect to it. Run by the PostgreSQL
-- container on its first start (docker-compose.yml); scripts/infra.sh does the same on a local server.
-- Give the roles passwords (ALTER ROLE ... PASSWORD) wherever the server does not trust local connections.
CREATE ROLE walletun_user LOGIN;
CREATE ROLE walletun_wallet LOGIN;
CREATE ROLE walletun_webhook LOGIN;
CREATE DATABASE walletun_user OWNER walletun_user;
CREATE DATABASE walletun_wallet OWNER walletun_wallet;
CREATE DATABASE walletun_webhook OWNER walletun_webhook;
REVOKE CONNECT, TEMPORARY ON DATABASE walletun_user FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE walletun_wallet FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE walletun_webhook FROM PUBLIC;
GRANT CONNECT ON DATABASE walletun_user TO walletun_user;
GRANT CONNECT ON DATABASE walletun_wallet TO walletun_wallet;
GRANT CONNECT ON DATABASE walletun_webhook TO walletun_webhook;
