"""``noslate``: the command line (serve the daemon, talk to its control API).

Exit codes: 0 ok, 1 failure (the daemon refused or is unreachable), 2 usage or
configuration error. Errors are printed as one line (plus ``message @ $.path``
lines when there are several problems), never as a traceback.
Reference: ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from kernel import cli_local as local
from kernel.cli_client import Client, CLIError, data_address
from kernel.cli_format import fmt_age, fmt_time, print_json, table

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Connection options, accepted before or after the command name."""
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--control",
        default=default,
        metavar="ADDR",
        help="control API address: HOST:PORT, http://HOST:PORT or unix:PATH "
        "(env NOSLATE_CONTROL; else the config's [server] control_bind; else 127.0.0.1:8081)",
    )
    group.add_argument(
        "--token",
        default=default,
        help="control API bearer token (env NOSLATE_CONTROL_TOKEN; else the config's [control] token)",
    )
    group.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="config file to read defaults from (env NOSLATE_CONFIG)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noslate",
        description="Run untrusted JavaScript request handlers in isolated, fast-starting processes.",
    )
    _common(parser, top=True)
    parser.add_argument("--version", action="version", version=f"noslate {local.version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, top=False)
        return p

    p = command("serve", "run the daemon (data plane and control API)")
    p.add_argument("--data-bind", metavar="HOST:PORT", help="data plane listener (default 127.0.0.1:8080)")
    p.add_argument(
        "--control-bind", metavar="HOST:PORT|unix:PATH", help="control API listener (default 127.0.0.1:8081)"
    )
    p.add_argument("--state-dir", metavar="DIR", help="where the function registry lives")

    p = command("deploy", "deploy (or replace) a function")
    p.add_argument("name", help="function name (a DNS label: [a-z0-9-], 1 to 63 characters)")
    p.add_argument("file", help="the code: a service-worker script or an ES module (.js, .mjs, .ts)")
    p.add_argument("--profile", metavar="PROFILE", help="Noslate profile as .json or .toml")
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the stored function as JSON")

    p = command("functions", "list deployed functions")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = command("get", "show one function's profile and version")
    p.add_argument("name")

    p = command("rm", "delete a function")
    p.add_argument("name")

    p = command("instances", "list running worker instances")
    p.add_argument("--function", metavar="NAME", help="only this function's instances")
    p.add_argument("--json", action="store_true", help="print a JSON list (with each sandbox)")

    p = command("logs", "print a function's recent log lines")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=200, help="how many recent lines (default 200)")
    p.add_argument("--json", action="store_true", help="print JSON lines")

    p = command("invoke", "send an HTTP request to a function through the data plane")
    p.add_argument("name")
    p.add_argument("path", nargs="?", default="/", help="path and query the worker sees (default /)")
    p.add_argument(
        "-X", "--request", dest="method", default=None, help="HTTP method (default GET, or POST with -d)"
    )
    p.add_argument("-d", "--data", help="request body; @FILE reads a file, @- reads stdin")
    p.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header"
    )
    p.add_argument("-i", "--include", action="store_true", help="print the status line and headers too")
    p.add_argument("--fail", action="store_true", help="exit 1 when the status is 400 or more")
    p.add_argument("--data-plane", metavar="HOST:PORT", help="data plane address (env NOSLATE_DATA)")

    p = command(
        "drain",
        "mark the daemon not ready (/readyz 503) while it keeps serving: a Kubernetes preStop "
        "runs it so balancers move traffic away before SIGTERM",
    )
    p.add_argument("--undo", action="store_true", help="ready again (while not shutting down)")

    p = command("db", "the shared function registry's database ([registry] backend)")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dsub.required = True
    dsub.add_parser("migrate", help="create or migrate its schema (the daemon also does at start)")

    p = command("plugins", "list installed plugins (works without a daemon)")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = command("config", "configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    v = csub.add_parser("validate", help="check a TOML config file; exit 2 listing every problem")
    v.add_argument("file")
    csub.add_parser("default", help="print the embedded default config")

    p = command("status", "show the daemon's status")
    p.add_argument("--json", action="store_true", help="print the JSON document")

    p = command("kv", "inspect KV stores (namespaces, sizes, entries, hits, misses)")
    p.add_argument("--namespace", help="only this namespace")
    p.add_argument("--values", action="store_true", help="include values (authenticated request)")
    return parser


# ---- commands ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    return local.serve(
        config=_config_path(args),
        data_bind=args.data_bind,
        control_bind=args.control_bind,
        state_dir=args.state_dir,
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {path}: {exc}", EXIT_USAGE) from exc
    profile = local.read_profile(args.profile) if args.profile else {}
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--env {item!r}: expected KEY=VALUE", EXIT_USAGE)
        env[key] = value
    body = {"profile": profile, "code": code, "filename": path.name, "env": env}
    status, data = _client(args).request("PUT", f"/v1/functions/{args.name}", body)
    if args.json:
        print_json(data)
    else:
        verb = "created" if status == 201 else "updated"
        print(f"{verb} {args.name} {data.get('version', '')}")
    return EXIT_OK


def cmd_functions(args: argparse.Namespace) -> int:
    _, data = _client(args).request("GET", "/v1/functions")
    functions = data["functions"]
    if args.json:
        print_json(functions)
        return EXIT_OK
    rows = [
        [
            f["name"],
            f["profile"].get("runtime", ""),
            f.get("version", "")[:19],
            fmt_time(f.get("deployed_at")),
        ]
        for f in functions
    ]
    table(["NAME", "RUNTIME", "VERSION", "DEPLOYED"], rows)
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    _, data = _client(args).request("GET", f"/v1/functions/{args.name}")
    print_json(data)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    _client(args).request("DELETE", f"/v1/functions/{args.name}")
    print(f"deleted {args.name}")
    return EXIT_OK


def cmd_instances(args: argparse.Namespace) -> int:
    query = f"?function={args.function}" if args.function else ""
    _, data = _client(args).request("GET", f"/v1/instances{query}")
    instances = data["instances"]
    if args.json:
        print_json(instances)
        return EXIT_OK
    rows = [
        [
            i.get("id", ""),
            i["function"],
            str(i["pid"]),
            i["state"],
            str(i.get("active", "")),
            str(i.get("served", "")),
            str(i.get("version", ""))[:19],
            fmt_age(i.get("started_at")),
        ]
        for i in instances
    ]
    table(["ID", "FUNCTION", "PID", "STATE", "ACTIVE", "SERVED", "VERSION", "AGE"], rows)
    return EXIT_OK


def _print_log(line: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(line), flush=True)
        return
    where = line.get("instance") or line.get("function", "")
    print(
        f"{fmt_time(line.get('time'))} {line.get('level', 'info'):5} {where}: {line.get('message', '')}",
        flush=True,
    )


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    path = f"/v1/functions/{args.name}/logs?limit={args.lines}"
    if not args.follow:
        _, data = client.request("GET", path)
        for line in data["lines"]:
            _print_log(line, args.json)
        return EXIT_OK
    try:
        for line in client.stream_lines(path + "&follow=1"):
            _print_log(line, args.json)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_invoke(args: argparse.Namespace) -> int:
    import httpx

    body: bytes | None = None
    if args.data is not None:
        if args.data == "@-":
            body = sys.stdin.buffer.read()
        elif args.data.startswith("@"):
            try:
                body = Path(args.data[1:]).read_bytes()
            except OSError as exc:
                raise CLIError(f"cannot read {args.data[1:]}: {exc}", EXIT_USAGE) from exc
        else:
            body = args.data.encode()
    headers: list[tuple[str, str]] = []
    for item in args.header:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise CLIError(f"-H {item!r}: expected 'NAME: VALUE'", EXIT_USAGE)
        headers.append((key.strip(), value.strip()))
    addr = args.data_plane or os.environ.get("NOSLATE_DATA") or _client(args).data_plane()
    addr = data_address(addr, _config_path(args))
    host_port = addr.rsplit(":", 1)[-1]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", f"{args.name}.localhost:{host_port}"))
    path = args.path if args.path.startswith("/") else "/" + args.path
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0)) as http,
            http.stream(method, f"http://{addr}{path}", content=body, headers=headers) as resp,
        ):
            if args.include:
                reason = resp.reason_phrase or _reason(resp.status_code)
                print(f"HTTP/{resp.http_version.split('/')[-1]} {resp.status_code} {reason}")
                for k, v in resp.headers.multi_items():
                    print(f"{k}: {v}")
                print()
                sys.stdout.flush()
            for chunk in resp.iter_raw():
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            status = resp.status_code
    except httpx.HTTPError as exc:
        raise CLIError(f"request to the data plane at {addr} failed: {exc or type(exc).__name__}") from exc
    if status >= 400 and args.fail:
        print(f"noslate: {args.name} answered {status}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = local.list_plugins(_config_path(args))
    if args.json:
        print_json(plugins)
        return EXIT_OK
    rows = [
        [p["name"], p.get("version", ""), "yes" if p.get("enabled") else "no", ", ".join(p.get("hooks", []))]
        for p in plugins
    ]
    table(["NAME", "VERSION", "ENABLED", "HOOKS"], rows)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "default":
        sys.stdout.write(local.default_config_text())
        return EXIT_OK
    errors = local.validate_config(args.file)
    if errors:
        print(f"noslate: error: invalid configuration in {args.file}", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.file}: ok")
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    version, where = local.migrate_registry(_config_path(args))
    print(f"{where}: schema version {version}")
    return EXIT_OK


def cmd_drain(args: argparse.Namespace) -> int:
    _, data = _client(args).request("DELETE" if args.undo else "POST", "/v1/drain")
    print(data.get("status", ""))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    _, data = _client(args).request("GET", "/v1/status")
    if args.json:
        print_json(data)
        return EXIT_OK
    print(
        f"noslate {data.get('version', '')}: {data.get('status', '')}, up {fmt_age(data.get('started_at'))}"
    )
    for key in ("data_plane", "control", "state_dir"):
        if data.get(key):
            print(f"  {key.replace('_', ' ')}: {data[key]}")
    print(f"  functions: {data.get('functions', 0)}, instances: {data.get('instances', 0)}")
    for name, report in sorted((data.get("capabilities") or {}).items()):
        print(f"  {name}: {json.dumps(report, sort_keys=True)}")
    return EXIT_OK


def cmd_kv(args: argparse.Namespace) -> int:
    params = []
    if args.namespace:
        params.append(f"namespace={args.namespace}")
    if args.values:
        params.append("values=1")
    query = "?" + "&".join(params) if params else ""
    _, data = _client(args).request("GET", f"/v1/kv{query}")
    print_json(data)
    return EXIT_OK


COMMANDS = {
    "serve": cmd_serve,
    "deploy": cmd_deploy,
    "functions": cmd_functions,
    "get": cmd_get,
    "rm": cmd_rm,
    "instances": cmd_instances,
    "logs": cmd_logs,
    "invoke": cmd_invoke,
    "plugins": cmd_plugins,
    "config": cmd_config,
    "status": cmd_status,
    "drain": cmd_drain,
    "db": cmd_db,
    "kv": cmd_kv,
}
"""Every user-facing command (``tests/test_docs.py`` checks each is in docs/cli.md)."""


# ---- plumbing ------------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None) or os.environ.get("NOSLATE_CONFIG") or None


def _client(args: argparse.Namespace) -> Client:
    return Client.from_settings(
        control=getattr(args, "control", None),
        token=getattr(args, "token", None),
        config=_config_path(args),
    )


def main(argv: list[str] | None = None) -> NoReturn:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
    except CLIError as exc:
        print(f"noslate: error: {exc.message}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("NOSLATE_DEBUG"):
            raise
        leaf = local.leaf(exc)
        print(
            f"noslate: error: internal error: {type(leaf).__name__}: {leaf} "
            "(NOSLATE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        code = EXIT_FAIL
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
