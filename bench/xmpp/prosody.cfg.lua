-- Prosody 0.12 (Debian 12) configuration for the same-run comparison with surechat.
--
-- Used by run-prosody.sh, which copies this file into a fresh temporary directory and
-- replaces @BENCH_DIR@ with that directory (data, SQLite file, pid file, logs, admin socket).
--
-- - one virtual host, c2s on 127.0.0.1:5222 only, plaintext (no TLS) with SASL PLAIN;
-- - accounts, rosters and the message archive (mod_mam) in one SQLite file via
--   mod_storage_sql (LuaDBI, lua-dbi-sqlite3);
-- - mod_mam archives every one-to-one message by default (default_archive_policy = true)
--   and keeps it (archive_expires_after = "never");
-- - no rate limiting: mod_limits is not loaded.

data_path = "@BENCH_DIR@/data"
pidfile = "@BENCH_DIR@/prosody.pid"
admin_socket = "@BENCH_DIR@/prosody.sock"
log = {
	warn = "@BENCH_DIR@/prosody.log";
}

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { 5222 }
network_backend = "epoll"

modules_enabled = {
	"saslauth";
	"roster";
	"disco";
	"mam";
	"offline";
	"posix";
	"admin_shell";
}
-- Nothing else listens: no s2s, no HTTP, no component ports.
modules_disabled = { "s2s"; "dialback"; "tls"; "limits"; "http"; }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
c2s_direct_tls_ports = { }

c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"

storage = "sql"
sql = {
	driver = "SQLite3";
	database = "@BENCH_DIR@/data/prosody.sqlite";
}

default_archive_policy = true
archive_expires_after = "never"

VirtualHost "bench.local"
