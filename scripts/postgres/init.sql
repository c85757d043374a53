-- The databases walletun's services own. Run by the PostgreSQL container on its first start
-- (docker-compose.yml); scripts/infra.sh creates the same databases on a local server.
CREATE DATABASE walletun_user;
CREATE DATABASE walletun_wallet;
