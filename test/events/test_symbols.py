"""chat.so is loaded into every backend (shared_preload_libraries): each
symbol it exports shares one namespace with PostgreSQL and every other
loaded library, so each is prefixed (Chat…, chat_…), besides the two the
module interface requires."""
import os
import subprocess

ALLOWED = ("Chat", "chat_", "pg_finfo_chat_")
REQUIRED = {"Pg_magic_func", "_PG_init"}


def installed_library():
    pg_config = os.path.join(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"), "pg_config")
    libdir = subprocess.run([pg_config, "--pkglibdir"], check=True, capture_output=True, text=True).stdout.strip()
    return os.path.join(libdir, "chat.so")


def test_every_exported_symbol_is_prefixed():
    out = subprocess.run(["nm", "-D", "--defined-only", installed_library()],
                         check=True, capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    # the linker's own markers
    names -= {"_init", "_fini", "__bss_start", "_edata", "_end"}
    assert REQUIRED <= names
    assert sorted(n for n in names - REQUIRED if not n.startswith(ALLOWED)) == []
    assert "chat_history" in names and "pg_finfo_chat_history" in names
