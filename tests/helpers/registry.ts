/**
 * Real registries for tests and benchmarks: Debian's `docker-registry` (CNCF Distribution 2.8) on a
 * free 127.0.0.1 port with its own temp config and storage, optionally behind htpasswd (bcrypt)
 * auth; and a loopback HTTP proxy that counts bytes and can inject faults (cut a connection
 * part-way through an upload, answer a request itself).
 */
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export interface StartedRegistry {
    /** `127.0.0.1:PORT` */
    host: string;
    stop(): Promise<void>;
    /** With htpasswd: a dir whose config.json holds an `auths` entry for `host` (use as $DOCKER_CONFIG). */
    dockerConfigDir?: string;
    /** The registry's storage root (tests may inspect or corrupt it). */
    storageDir: string;
    /** The registry's log file. */
    logFile: string;
}

/** A free TCP port on 127.0.0.1 (bound and released; the registry binds it right after). */
export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

async function waitForHttp(url: string, proc: ChildProcess, logFile: string, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
        if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
        try {
            const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
            await r.arrayBuffer();
            if (r.status === 200 || r.status === 401) return;
        } catch {
            /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not answer on ${url} within ${timeoutMs} ms`);
}

/** Starts `docker-registry serve <config.yml>` on a free loopback port; `stop()` kills it and removes its files. */
export async function startRegistry(opts: { htpasswd?: { user: string; password: string } } = {}): Promise<StartedRegistry> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-registry-"));
    const storageDir = path.join(dir, "storage");
    fs.mkdirSync(storageDir);
    const logFile = path.join(dir, "registry.log");
    let auth = "";
    let dockerConfigDir: string | undefined;
    let lastErr: unknown;
    for (let tries = 0; tries < 3; tries++) {
        const port = await freePort();
        const host = `127.0.0.1:${port}`;
        if (opts.htpasswd) {
            const hp = spawnSync("htpasswd", ["-Bbn", opts.htpasswd.user, opts.htpasswd.password], { encoding: "utf8" });
            if (hp.status !== 0) throw new Error(`htpasswd failed: ${hp.stderr}`);
            fs.writeFileSync(path.join(dir, "htpasswd"), hp.stdout);
            auth = `auth:\n  htpasswd:\n    realm: thinlayer-test\n    path: ${path.join(dir, "htpasswd")}\n`;
            dockerConfigDir = path.join(dir, "docker");
            fs.mkdirSync(dockerConfigDir, { recursive: true });
            const token = Buffer.from(`${opts.htpasswd.user}:${opts.htpasswd.password}`).toString("base64");
            fs.writeFileSync(path.join(dockerConfigDir, "config.json"), JSON.stringify({ auths: { [host]: { auth: token } } }, null, 2));
        }
        const config = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            `    rootdirectory: ${storageDir}`,
            "  delete:",
            "    enabled: true",
            "http:",
            `  addr: ${host}`,
            auth,
        ].join("\n");
        const cfgFile = path.join(dir, "config.yml");
        fs.writeFileSync(cfgFile, config);
        const out = fs.openSync(logFile, "a");
        const proc = spawn("docker-registry", ["serve", cfgFile], { stdio: ["ignore", out, out] });
        fs.closeSync(out);
        try {
            await waitForHttp(`http://${host}/v2/`, proc, logFile);
        } catch (e) {
            lastErr = e;
            proc.kill("SIGKILL");
            continue;
        }
        return {
            host,
            storageDir,
            logFile,
            dockerConfigDir,
            stop: async () => {
                if (proc.exitCode === null) {
                    const exited = new Promise((r) => proc.once("exit", r));
                    proc.kill("SIGTERM");
                    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
                    if (proc.exitCode === null) proc.kill("SIGKILL");
                }
                fs.rmSync(dir, { recursive: true, force: true });
            },
        };
    }
    throw lastErr;
}

/** What a proxy hook sees about one request. */
export interface ProxiedRequest {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
}

export interface ProxyOptions {
    /** Answer a request without forwarding it (return undefined to forward). */
    intercept?: (req: ProxiedRequest) => { status: number; body?: unknown; headers?: Record<string, string> } | undefined;
    /** Cut the connection once this many request-body bytes of one upload request have passed (then forward normally again). */
    cutUploadAfterBytes?: number;
    /** How many uploads to cut. @default 1 */
    cuts?: number;
    /** Simulate a link of this many bytes per second in each direction (shared by all connections). */
    bytesPerSecond?: number;
}

/** Paces one direction of a simulated link: returns how long the sender should wait (ms). */
function pacer(bytesPerSecond: number | undefined): (n: number) => number {
    let nextFree = 0;
    return (n: number) => {
        if (!bytesPerSecond) return 0;
        const now = performance.now();
        const start = Math.max(now, nextFree);
        nextFree = start + (n / bytesPerSecond) * 1000;
        return nextFree - now;
    };
}

export interface StartedProxy {
    host: string;
    /** Request bytes (bodies) forwarded to the registry, and response body bytes sent back. */
    counters: { bytesUp: number; bytesDown: number; requests: ProxiedRequest[]; cuts: number };
    reset(): void;
    stop(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of `target` (`127.0.0.1:PORT`) that counts body bytes both ways
 * and can inject faults. Rewrites `Location` headers so clients keep talking to the proxy.
 */
export async function startProxy(target: string, opts: ProxyOptions = {}): Promise<StartedProxy> {
    const counters = { bytesUp: 0, bytesDown: 0, requests: [] as ProxiedRequest[], cuts: 0 };
    let cutsLeft = opts.cuts ?? 1;
    const paceUp = pacer(opts.bytesPerSecond);
    const paceDown = pacer(opts.bytesPerSecond);

    let self = "";
    const [thost, tport] = target.split(":");
    const server = http.createServer((req, res) => {
        const info: ProxiedRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers };
        counters.requests.push(info);
        const answer = opts.intercept?.(info);
        if (answer) {
            req.resume();
            const body = answer.body === undefined ? "" : JSON.stringify(answer.body);
            res.writeHead(answer.status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)), ...(answer.headers ?? {}) });
            res.end(body);
            return;
        }
        const isUpload = /\/blobs\/uploads\//.test(info.url) && (info.method === "PATCH" || info.method === "PUT");
        const cutHere = isUpload && opts.cutUploadAfterBytes !== undefined && cutsLeft > 0;
        const headers = { ...req.headers, host: target };
        const up = http.request({ host: thost, port: Number(tport), method: req.method, path: req.url, headers }, (ures) => {
            const h = { ...ures.headers };
            if (typeof h.location === "string") h.location = h.location.replace(`http://${target}`, `http://${self}`);
            res.writeHead(ures.statusCode ?? 502, h);
            ures.on("data", (c: Buffer) => {
                counters.bytesDown += c.length;
                const ok = res.write(c);
                const wait = paceDown(c.length);
                if (wait > 2 || !ok) {
                    ures.pause();
                    const resume = () => setTimeout(() => ures.resume(), Math.max(0, wait));
                    if (ok) resume();
                    else res.once("drain", resume);
                }
            });
            ures.on("end", () => res.end());
        });
        up.on("error", () => res.destroy());
        let seen = 0;
        req.on("data", (c: Buffer) => {
            if (cutHere && seen + c.length > (opts.cutUploadAfterBytes ?? 0)) {
                cutsLeft--;
                counters.cuts++;
                // Forward part of the body, then drop both sides as a broken network would.
                const part = c.subarray(0, Math.max(0, (opts.cutUploadAfterBytes ?? 0) - seen));
                counters.bytesUp += part.length;
                up.write(part);
                seen = Infinity;
                up.destroy();
                req.socket.destroy();
                return;
            }
            if (seen === Infinity) return;
            seen += c.length;
            counters.bytesUp += c.length;
            up.write(c);
            const wait = paceUp(c.length);
            if (wait > 2) {
                req.pause();
                setTimeout(() => req.resume(), wait);
            }
        });
        req.on("end", () => {
            if (seen !== Infinity) up.end();
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    self = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    return {
        host: self,
        counters,
        reset: () => {
            counters.bytesUp = 0;
            counters.bytesDown = 0;
            counters.requests = [];
        },
        stop: () =>
            new Promise<void>((r) => {
                server.closeAllConnections();
                server.close(() => r());
            }),
    };
}
