/**
 * A real Redis for tests (the example's Celery broker and result backend): Debian's `redis-server`
 * on a free 127.0.0.1 port with a password, no persistence, its files in a temp dir; `stop()`
 * shuts it down and removes them.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./registry";

export interface StartedRedis {
    port: number;
    password: string;
    /** `redis://:password@<address>:port/db` (what CELERY_BROKER_URL holds); address 127.0.0.1 by default. */
    url(db?: number, address?: string): string;
    /** Runs one redis-cli command; returns its raw output. */
    cli(...args: string[]): string;
    stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1 and, with `listen`, one more address (e.g. a container bridge's gateway). */
export async function startRedis(opts: { listen?: string; timeoutMs?: number } = {}): Promise<StartedRedis> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-redis-"));
    const password = randomBytes(18).toString("hex");
    const logFile = path.join(dir, "redis.log");
    const until = Date.now() + timeoutMs;
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        // The password goes through a config file, not argv (ps would show it).
        const conf = path.join(dir, "redis.conf");
        fs.writeFileSync(
            conf,
            [
                `bind 127.0.0.1${opts.listen ? ` ${opts.listen}` : ""}`,
                `port ${port}`,
                `requirepass ${password}`,
                `dir ${dir}`,
                `save ""`,
                `appendonly no`,
                `logfile ${logFile}`,
                `daemonize no`,
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
        const proc = spawn("redis-server", [conf], { stdio: "ignore" });
        const cli = (...args: string[]): string => {
            const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--no-auth-warning", ...args], {
                encoding: "utf8",
                env: { ...process.env, REDISCLI_AUTH: password },
            });
            if (r.status !== 0) throw new Error(`redis-cli ${args.join(" ")} failed with ${r.status}: ${r.stderr}`);
            return r.stdout.trim();
        };
        while (Date.now() < until && proc.exitCode === null) {
            try {
                if (cli("PING") === "PONG") {
                    return {
                        port,
                        password,
                        url: (db = 0, address = "127.0.0.1") => `redis://:${password}@${address}:${port}/${db}`,
                        cli,
                        stop: async () => {
                            if (proc.exitCode === null && proc.signalCode === null) {
                                const exited = new Promise((r) => proc.once("exit", r));
                                proc.kill("SIGTERM");
                                await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
                                if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
                            }
                            fs.rmSync(dir, { recursive: true, force: true });
                        },
                    };
                }
            } catch {
                /* not up yet */
            }
            await new Promise((r) => setTimeout(r, 50));
        }
        if (proc.exitCode === null) proc.kill("SIGKILL");
        if (Date.now() >= until) break;
    }
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").slice(-2000) : "";
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not answer PING on 127.0.0.1 within ${timeoutMs} ms: ${log}`);
}
