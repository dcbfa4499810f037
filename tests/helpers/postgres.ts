/**
 * A real PostgreSQL for tests: Debian's server binaries (package `postgresql`), a fresh cluster
 * (initdb) in a temp dir, listening on a free 127.0.0.1 port with its unix socket in that dir, one
 * database and one password role for the app; `stop()` shuts it down and removes every file.
 *
 * initdb and postgres refuse to run as root, and the tests run as root: both run as an
 * unprivileged user (`postgres`, made by Debian's package, else `nobody`) through the child
 * process's uid/gid (libuv drops root's supplementary groups too), and the temp dir belongs to it.
 * The superuser connects only over the socket (trust, for the test's own checks); TCP asks every
 * role for its password (scram-sha-256), as a cluster database would.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./registry";

export interface StartedPostgres {
    host: "127.0.0.1";
    port: number;
    database: string;
    user: string;
    password: string;
    /** `postgres://user:password@127.0.0.1:port/database` (what DATABASE_URL holds). */
    url: string;
    /** The same URL through another address the server listens on (see `listen`). */
    urlVia(address: string): string;
    /**
     * Holds `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` in an open transaction (as the
     * superuser) until `release()`: queries on the table wait meanwhile (a request kept in flight).
     */
    lockTable(table: string): Promise<{ release(): Promise<void> }>;
    /** Runs SQL as the superuser over the unix socket; returns psql's unaligned, tuples-only output. */
    psql(sql: string, database?: string): string;
    /** The server's log (for failure messages). */
    log(): string;
    stop(): Promise<void>;
}

/** Where Debian's server binaries are: $THINLAYER_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin with initdb. */
export function postgresBinDir(): string | undefined {
    const fromEnv = process.env.THINLAYER_PG_BINDIR;
    if (fromEnv) return fromEnv;
    const root = "/usr/lib/postgresql";
    if (!fs.existsSync(root)) return undefined;
    const versions = fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a));
    return versions.length ? path.join(root, versions[0], "bin") : undefined;
}

/** The unprivileged account the server runs as. */
function serverAccount(): { name: string; uid: number; gid: number } {
    for (const name of ["postgres", "nobody"]) {
        const uid = spawnSync("id", ["-u", name], { encoding: "utf8" });
        const gid = spawnSync("id", ["-g", name], { encoding: "utf8" });
        if (uid.status === 0 && gid.status === 0) return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
    }
    throw new Error(
        "no unprivileged account to run PostgreSQL as (tried postgres, nobody); expected one of them in /etc/passwd. Fix: apt-get install -y postgresql (it creates the postgres user)",
    );
}

function chownTree(p: string, uid: number, gid: number): void {
    fs.chownSync(p, uid, gid);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

/** Starts a fresh cluster; the database and role names default to the example app's. */
/**
 * Starts a fresh cluster; the database and role names default to the example app's. `listen`: one
 * more address to listen on (e.g. a container bridge's gateway) and the CIDR allowed to connect
 * through it with a password.
 */
export async function startPostgres(
    opts: { database?: string; user?: string; timeoutMs?: number; listen?: { address: string; allow: string } } = {},
): Promise<StartedPostgres> {
    const bin = postgresBinDir();
    if (!bin)
        throw new Error(
            "PostgreSQL server binaries not found: no /usr/lib/postgresql/N/bin/initdb and THINLAYER_PG_BINDIR unset. Fix: apt-get install -y postgresql",
        );
    const account = serverAccount();
    const database = opts.database ?? "emr";
    const user = opts.user ?? "emr";
    const password = randomBytes(18).toString("hex");
    const superuser = "thinlayer";

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-postgres-"));
    const data = path.join(dir, "data");
    const sockets = path.join(dir, "sockets");
    fs.mkdirSync(sockets);
    chownTree(dir, account.uid, account.gid);
    const asServer = { uid: account.uid, gid: account.gid, cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" } };

    const init = spawnSync(
        path.join(bin, "initdb"),
        ["-D", data, "-U", superuser, "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
        { ...asServer, encoding: "utf8" },
    );
    if (init.status !== 0) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw new Error(`initdb (as ${account.name}) failed with ${init.status}: ${init.stderr}${init.stdout}`);
    }

    if (opts.listen) fs.appendFileSync(path.join(data, "pg_hba.conf"), `host all all ${opts.listen.allow} scram-sha-256\n`);
    const listenOn = ["127.0.0.1", ...(opts.listen ? [opts.listen.address] : [])].join(",");

    const logFile = path.join(dir, "postgres.log");
    const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
    let proc: ChildProcess | undefined;
    let port = 0;
    const until = Date.now() + (opts.timeoutMs ?? 30_000);
    for (let attempt = 0; attempt < 3 && proc === undefined; attempt++) {
        port = await freePort();
        const out = fs.openSync(logFile, "a");
        fs.fchownSync(out, account.uid, account.gid);
        // fsync off: a throwaway cluster, and fsync is most of its start and DDL time.
        const p = spawn(
            path.join(bin, "postgres"),
            ["-D", data, "-h", listenOn, "-p", String(port), "-k", sockets, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
            { ...asServer, stdio: ["ignore", out, out] },
        );
        fs.closeSync(out);
        while (Date.now() < until) {
            if (p.exitCode !== null || p.signalCode !== null) break;
            const ready = spawnSync(path.join(bin, "pg_isready"), ["-h", sockets, "-p", String(port), "-U", superuser, "-d", "postgres", "-t", "1"], {
                encoding: "utf8",
            });
            if (ready.status === 0) {
                proc = p;
                break;
            }
            await new Promise((r) => setTimeout(r, 100));
        }
        if (proc === undefined && p.exitCode === null) p.kill("SIGKILL");
        if (Date.now() >= until) break;
    }
    if (proc === undefined) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw new Error(`postgres did not accept connections on 127.0.0.1 within ${opts.timeoutMs ?? 30_000} ms: ${log().slice(-2000)}`);
    }

    const psql = (sql: string, db = "postgres"): string => {
        const r = spawnSync(
            path.join(bin, "psql"),
            ["-h", sockets, "-p", String(port), "-U", superuser, "-d", db, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            { encoding: "utf8" },
        );
        if (r.status !== 0) throw new Error(`psql -c ${JSON.stringify(sql)} on ${db} failed with ${r.status}: ${r.stderr}`);
        return r.stdout.trim();
    };
    // CREATEDB: Django's test runner creates and drops test_<database>.
    psql(`CREATE ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`);
    psql(`CREATE DATABASE ${database} OWNER ${user}`);

    const server = proc;
    return {
        host: "127.0.0.1",
        port,
        database,
        user,
        password,
        url: `postgres://${user}:${password}@127.0.0.1:${port}/${database}`,
        urlVia: (address) => `postgres://${user}:${password}@${address}:${port}/${database}`,
        psql,
        lockTable: async (table) => {
            const p = spawn(
                path.join(bin, "psql"),
                ["-h", sockets, "-p", String(port), "-U", superuser, "-d", database, "-X", "-At", "-v", "ON_ERROR_STOP=1"],
                { stdio: ["pipe", "pipe", "pipe"] },
            );
            let out = "";
            p.stdout.on("data", (b: Buffer) => (out += b.toString()));
            p.stderr.on("data", (b: Buffer) => (out += b.toString()));
            p.stdin.write(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n`);
            const until = Date.now() + 10_000;
            while (!out.includes("locked")) {
                if (p.exitCode !== null || Date.now() > until) throw new Error(`could not lock ${table}: ${out}`);
                await new Promise((r) => setTimeout(r, 20));
            }
            return {
                release: async () => {
                    const exited = new Promise((r) => p.once("exit", r));
                    p.stdin.end("COMMIT;\n");
                    await exited;
                },
            };
        },
        log,
        stop: async () => {
            if (server.exitCode === null && server.signalCode === null) {
                const exited = new Promise((r) => server.once("exit", r));
                server.kill("SIGINT"); // "fast" shutdown: disconnect clients, stop cleanly
                await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
                if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
            }
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}
