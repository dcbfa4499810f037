/**
 * A real Docker engine for tests: Debian's `dockerd` (20.10, built-in BuildKit) as root with its
 * own data root, exec root, pid file and unix socket under a temp dir, so it never touches a
 * system daemon and several test files can each run one at the same time.
 *
 * Networking: each daemon gets its own Linux bridge and /24 (dockerd's default `docker0` and its
 * iptables chains are machine-wide, and a second daemon with `--iptables=true` flushes the first
 * one's chains). dockerd runs with `--iptables=false`; published ports still work through
 * docker-proxy (the userland proxy), and outbound traffic (apt-get / pip in RUN steps) goes
 * through one MASQUERADE rule and two FORWARD rules this helper adds for its subnet and removes
 * on stop. The bridge MTU follows the host's default-route interface (1400 on some VMs: a 1500
 * MTU inside would stall TLS downloads).
 *
 * Clients: `DOCKER` is Debian's /usr/bin/docker (20.10), which drives the daemon's built-in
 * BuildKit with DOCKER_BUILDKIT=1; a newer client on PATH without the buildx plugin cannot.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";

/** The docker client the tests use (Debian's 20.10 when installed). */
export const DOCKER = fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";

/** Tools `startDockerd` needs (for `needTools`). */
export const DOCKERD_TOOLS = ["dockerd", "containerd", "runc", DOCKER, "iptables", "ip"];

export interface StartedDockerd {
    /** `unix:///…/docker.sock` */
    host: string;
    /** DOCKER_HOST, THINLAYER_DOCKER and DOCKER_BUILDKIT for child processes (and builderEnv). */
    env: NodeJS.ProcessEnv;
    /** The daemon's data root (image store). */
    dataRoot: string;
    /** dockerd's log file. */
    logFile: string;
    /** The bridge's subnet, e.g. 10.231.7.0/24. */
    subnet: string;
    /** Runs the docker client against this daemon; returns stdout, throws with stderr on failure. */
    docker(args: string[], opts?: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv }): string;
    stop(): Promise<void>;
}

function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, ...opts });
    return { status: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? (r.error ? r.error.message : "")) };
}

function must(cmd: string, args: string[]): string {
    const r = sh(cmd, args);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
}

/** The MTU of the interface the default route leaves through (1500 when unknown). */
function hostMtu(): number {
    const dev = /\bdev (\S+)/.exec(sh("ip", ["-o", "route", "show", "default"]).stdout)?.[1];
    const mtu = dev ? Number(fs.readFileSync(`/sys/class/net/${dev}/mtu`, "utf8").trim()) : NaN;
    return Number.isInteger(mtu) && mtu > 0 ? Math.min(mtu, 1500) : 1500;
}

/** A free 10.231.X.0/24 (none of this machine's addresses in it). */
function freeSubnet(): number {
    const used = sh("ip", ["-o", "-4", "addr"]).stdout;
    const start = crypto.randomInt(256);
    for (let i = 0; i < 256; i++) {
        const x = (start + i) % 256;
        if (!used.includes(` 10.231.${x}.`)) return x;
    }
    throw new Error("no free 10.231.X.0/24 subnet for a test dockerd bridge (256 in use?)");
}

function ping(socket: string): Promise<boolean> {
    return new Promise((resolve) => {
        const req = http.get({ socketPath: socket, path: "/_ping", timeout: 1000 }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
        });
        req.on("error", () => resolve(false));
        req.on("timeout", () => {
            req.destroy();
            resolve(false);
        });
    });
}

/** Mount points at or under dir (deepest first), from this process's mount table. */
function mountsUnder(dir: string): string[] {
    const lines = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n");
    const points = lines.map((l) => l.split(" ")[4]).filter((p): p is string => p !== undefined && (p === dir || p.startsWith(dir + "/")));
    return points.sort((a, b) => b.length - a.length);
}

/**
 * Starts a dockerd of its own and waits until `docker info` answers. `stop()` stops it (running
 * containers included), unmounts what it left, removes its bridge, its iptables rules and its dirs.
 */
export async function startDockerd(opts: { timeoutMs?: number } = {}): Promise<StartedDockerd> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-dockerd-"));
    const dataRoot = path.join(dir, "data");
    const execRoot = path.join(dir, "exec");
    const socket = path.join(dir, "docker.sock");
    const logFile = path.join(dir, "dockerd.log");
    const x = freeSubnet();
    const bridge = `thl${crypto.randomBytes(3).toString("hex")}`;
    const subnet = `10.231.${x}.0/24`;
    const mtu = hostMtu();
    const rules: string[][] = [
        ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
        ["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"],
    ];
    const rule = (op: "-A" | "-D", r: string[]) => ["-w", r[0], r[1], op, ...r.slice(2)];
    let proc: ChildProcess | undefined;
    let cleaned = false;
    const cleanupSync = () => {
        if (cleaned) return;
        cleaned = true;
        if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        for (const m of mountsUnder(dir)) sh("umount", ["-l", m]);
        for (const r of rules) sh("iptables", rule("-D", r));
        sh("ip", ["link", "del", bridge]);
        fs.rmSync(dir, { recursive: true, force: true });
    };
    process.once("exit", cleanupSync);
    try {
        must("ip", ["link", "add", bridge, "type", "bridge"]);
        must("ip", ["link", "set", bridge, "mtu", String(mtu)]);
        must("ip", ["addr", "add", `10.231.${x}.1/24`, "dev", bridge]);
        must("ip", ["link", "set", bridge, "up"]);
        for (const r of rules) must("iptables", rule("-A", r));
        const out = fs.openSync(logFile, "a");
        proc = spawn(
            "dockerd",
            [
                "--data-root",
                dataRoot,
                "--exec-root",
                execRoot,
                "--pidfile",
                path.join(dir, "docker.pid"),
                "-H",
                `unix://${socket}`,
                "--bridge",
                bridge,
                "--mtu",
                String(mtu),
                "--iptables=false",
                "--ip-masq=false",
                "--insecure-registry",
                "127.0.0.0/8",
                "--shutdown-timeout",
                "5",
            ],
            { stdio: ["ignore", out, out] },
        );
        fs.closeSync(out);
        const until = Date.now() + (opts.timeoutMs ?? 60_000);
        while (!(await ping(socket))) {
            if (proc.exitCode !== null) throw new Error(`dockerd exited with ${proc.exitCode}: ${fs.readFileSync(logFile, "utf8").slice(-3000)}`);
            if (Date.now() > until)
                throw new Error(`dockerd did not answer on ${socket} within ${opts.timeoutMs ?? 60_000} ms: ${fs.readFileSync(logFile, "utf8").slice(-3000)}`);
            await new Promise((r) => setTimeout(r, 100));
        }
    } catch (e) {
        cleanupSync();
        process.removeListener("exit", cleanupSync);
        throw e;
    }
    const host = `unix://${socket}`;
    const env: NodeJS.ProcessEnv = { DOCKER_HOST: host, THINLAYER_DOCKER: DOCKER, DOCKER_BUILDKIT: "1" };
    const docker: StartedDockerd["docker"] = (args, o = {}) => {
        const r = sh(DOCKER, args, { env: { ...process.env, ...env, ...(o.env ?? {}) }, input: o.input, timeout: o.timeoutMs ?? 600_000 });
        if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.status}): ${r.stderr.trim().slice(-3000)}`);
        return r.stdout;
    };
    const info = sh(DOCKER, ["info", "--format", "{{.ServerVersion}}"], { env: { ...process.env, ...env } });
    if (info.status !== 0) {
        cleanupSync();
        throw new Error(`dockerd answers /_ping but docker info fails: ${info.stderr}`);
    }
    const daemon = proc;
    return {
        host,
        env,
        dataRoot,
        logFile,
        subnet,
        docker,
        stop: async () => {
            if (daemon.exitCode === null && daemon.signalCode === null) {
                const exited = new Promise((r) => daemon.once("exit", r));
                daemon.kill("SIGTERM");
                await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
            }
            cleanupSync();
            process.removeListener("exit", cleanupSync);
        },
    };
}
