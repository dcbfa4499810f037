/**
 * The app image alive: the program (index.ts, uat stack) is evaluated with its image commands run
 * for real — `thinlayer ensure base` reuses the example's real base (Dockerfile.base built FROM a
 * Debian-made python stand-in, tests/helpers/example-base.ts), `thinlayer ensure app` builds the
 * daemonless app layer — against a real registry. The pod specs it declares (migration Job, web
 * and worker Deployments, with the ConfigMap and Secret they read) are then run with a real Docker
 * engine as the kubelet would run them (tests/helpers/pod-docker.ts), against a real PostgreSQL
 * and a real Redis (the Celery broker the settings name).
 *
 * Networking as in a cluster: each container has its own network namespace on the daemon's
 * bridge, probes go to the container's IP (the pod IP), and the database and broker listen on the
 * bridge's gateway address (the DATABASE_URL / CELERY_BROKER_URL in the Secret).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { evaluateProgram, type EvalResult } from "../helpers/diff";
import { DOCKER, DOCKERD_TOOLS, startDockerd, type StartedDockerd } from "../helpers/dockerd";
import { EXAMPLE_BASE_TOOLS, exampleBase } from "../helpers/example-base";
import { missingExampleTools, needExampleTools, secretSettings } from "../helpers/example-app";
import { bytes, cpus, dockerRun, type DockerRunPlan } from "../helpers/pod-docker";
import { startPostgres, type StartedPostgres } from "../helpers/postgres";
import { startRedis, type StartedRedis } from "../helpers/redis";
import { startRegistry, type StartedRegistry } from "../helpers/registry";

const TOOLS = [...DOCKERD_TOOLS, ...EXAMPLE_BASE_TOOLS, "docker-registry", "redis-server", "redis-cli"];

interface World {
    registry: StartedRegistry;
    dockerd: StartedDockerd;
    pg: StartedPostgres;
    redis: StartedRedis;
    program: EvalResult;
    /** ConfigMap and Secret data by Kubernetes name, as envFrom reads them. */
    configMaps: Record<string, Record<string, string>>;
    secrets: Record<string, Record<string, string>>;
    dir: string;
    /** The bridge's gateway: where the containers reach PostgreSQL and Redis. */
    gateway: string;
}

let world: World | undefined;
const started: Array<() => Promise<void>> = [];

function missing(): string[] {
    return missingExampleTools(...TOOLS);
}

function need(t: TestContext): World | undefined {
    if (!needExampleTools(t, ...TOOLS)) return undefined;
    assert.ok(world, "the world did not come up (see the before hook's error)");
    return world;
}

/** A pod spec the program declared: `kind` and Pulumi name of the workload. */
function podOf(w: World, name: string): any {
    const r = w.program.resources.find((x) => x.name === name);
    assert.ok(r, `the program declared no ${name}; it declared ${w.program.resources.map((x) => x.name).join(", ")}`);
    return (r.inputs as any).spec.template.spec;
}

function plan(w: World, pod: any, container: string): DockerRunPlan {
    return dockerRun(pod, container, {
        configMaps: w.configMaps,
        secrets: w.secrets,
        envFile: path.join(w.dir, `${container}-${randomBytes(4).toString("hex")}.env`),
    });
}

function containerName(role: string): string {
    return `emr-${role}-${randomBytes(4).toString("hex")}`;
}

/** `docker run --rm` in the foreground; returns exit code and output. */
function runToEnd(w: World, p: DockerRunPlan, role: string): { code: number; out: string } {
    try {
        const out = w.dockerd.docker(["run", "--rm", "--name", containerName(role), ...p.flags, ...p.imageAndArgs], { timeoutMs: 300_000 });
        return { code: 0, out };
    } catch (e) {
        return { code: 1, out: (e as Error).message };
    }
}

function runDetached(w: World, p: DockerRunPlan, role: string): string {
    const name = containerName(role);
    w.dockerd.docker(["run", "-d", "--name", name, ...p.flags, ...p.imageAndArgs]);
    started.push(async () => {
        try {
            w.dockerd.docker(["rm", "-f", name]);
        } catch {
            /* already gone */
        }
    });
    return name;
}

function containerIp(w: World, name: string): string {
    const ip = w.dockerd.docker(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name]).trim();
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `container ${name} has no IP`);
    return ip;
}

/** The container's stdout and stderr, interleaved (docker logs replays them on its own two streams). */
function logs(w: World, name: string): string {
    const r = spawnSync(DOCKER, ["logs", name], { env: { ...process.env, ...w.dockerd.env }, encoding: "utf8", maxBuffer: 64 << 20 });
    return `${r.stdout}${r.stderr}`;
}

interface Answer {
    status?: number;
    body?: string;
    /** Connection error code (ECONNREFUSED, …). */
    error?: string;
    ms: number;
}

/** One HTTP GET on a new connection (as a probe or a new client would make). */
function get(ip: string, port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<Answer> {
    const t0 = Date.now();
    return new Promise((resolve) => {
        const req = http.request({ host: ip, port, path: urlPath, method: "GET", headers, agent: false, timeout: timeoutMs }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode, body, ms: Date.now() - t0 }));
            res.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, ms: Date.now() - t0 }));
        });
        req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
        req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, ms: Date.now() - t0 }));
        req.end();
    });
}

/** The readiness probe's request, exactly as the pod spec describes it (path, Host header, named port). */
function probe(
    c: any,
    kind: "readinessProbe" | "startupProbe",
): { path: string; port: number; headers: Record<string, string>; periodSeconds: number; failureThreshold: number; timeoutSeconds: number } {
    const p = c[kind];
    assert.ok(p?.httpGet, `the web container has no ${kind}.httpGet`);
    const port = typeof p.httpGet.port === "number" ? p.httpGet.port : (c.ports as any[]).find((x) => x.name === p.httpGet.port)?.containerPort;
    assert.ok(typeof port === "number", `${kind} port ${p.httpGet.port} names no container port`);
    const headers = Object.fromEntries(((p.httpGet.httpHeaders ?? []) as Array<{ name: string; value: string }>).map((h) => [h.name, h.value]));
    return {
        path: p.httpGet.path,
        port,
        headers,
        periodSeconds: p.periodSeconds ?? 10,
        failureThreshold: p.failureThreshold ?? 3,
        timeoutSeconds: p.timeoutSeconds ?? 1,
    };
}

/** Runs the startup probe as the kubelet does until it succeeds (or its failure threshold). */
async function waitStarted(w: World, name: string, c: any): Promise<{ ip: string; port: number; seconds: number }> {
    const ip = containerIp(w, name);
    const sp = probe(c, "startupProbe");
    const t0 = Date.now();
    let last: Answer | undefined;
    for (let i = 0; i < sp.failureThreshold; i++) {
        last = await get(ip, sp.port, sp.path, sp.headers, sp.timeoutSeconds * 1000);
        if (last.status !== undefined && last.status >= 200 && last.status < 400) return { ip, port: sp.port, seconds: (Date.now() - t0) / 1000 };
        await new Promise((r) => setTimeout(r, sp.periodSeconds * 1000));
    }
    throw new Error(`the startup probe never passed (last: ${JSON.stringify(last)}); container log:\n${logs(w, name).slice(-4000)}`);
}

const isSecretWrapper = (v: any) => v !== null && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v;

void describe("the app image, run as the pod spec runs it (real registry, Docker engine, PostgreSQL, Redis)", { timeout: 30 * 60_000 }, () => {
    before(async () => {
        if (missing().length) return; // each test then skips (locally) or fails (CI) with the reason
        const t0 = Date.now();
        const registry = await startRegistry();
        started.push(() => registry.stop());
        const dockerd = await startDockerd();
        started.push(() => dockerd.stop());
        const gateway = dockerd.subnet.replace(/\.0\/24$/, ".1");
        const pg = await startPostgres({ listen: { address: gateway, allow: dockerd.subnet } });
        started.push(() => pg.stop());
        const redis = await startRedis({ listen: gateway });
        started.push(() => redis.stop());
        const base = await exampleBase(registry.host, { repository: "thinlayer/base" });
        const tBase = Date.now();
        // The uat stack as the Pulumi CLI would hand it over, pointed at this registry and the stand-in.
        const secrets = secretSettings({ databaseUrl: pg.urlVia(gateway), brokerUrl: redis.url(0, gateway) });
        const program = await evaluateProgram({
            stack: "uat",
            config: { registry: registry.host, buildArgs: [`PYTHON_IMAGE=${base.pythonRef}`] },
            secrets: { secretSettings: Object.entries(secrets).map(([k, v]) => `${k}=${v}`) },
            mocks: { runCommands: true },
        });
        const tProgram = Date.now();
        const configMaps: Record<string, Record<string, string>> = {};
        const secretData: Record<string, Record<string, string>> = {};
        for (const r of program.resources) {
            const inputs = r.inputs as any;
            if (r.type === "kubernetes:core/v1:ConfigMap") configMaps[inputs.metadata.name] = inputs.data;
            if (r.type === "kubernetes:core/v1:Secret") {
                const data = isSecretWrapper(inputs.stringData) ? inputs.stringData.value : inputs.stringData;
                // Auto-named: the workloads reference it as `<pulumi name>-<suffix>`.
                for (const x of program.resources) {
                    for (const c of ((x.inputs as any)?.spec?.template?.spec?.containers ?? []) as any[]) {
                        for (const from of (c.envFrom ?? []) as any[]) {
                            const ref: unknown = from.secretRef?.name;
                            if (typeof ref === "string" && ref.startsWith(`${r.name}-`)) secretData[ref] = data;
                        }
                    }
                }
            }
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-container-"));
        started.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
        world = { registry, dockerd, pg, redis, program, configMaps, secrets: secretData, dir, gateway };
        // Pull once (what a node does before the first pod), timed.
        const tPull0 = Date.now();
        dockerd.docker(["pull", "-q", String(program.outputs.appImageRef)]);
        process.stderr.write(
            `# container world: services ${((tBase - t0) / 1000).toFixed(1)} s incl. example base; program + ensure ${((tProgram - tBase) / 1000).toFixed(1)} s (${JSON.stringify(program.outputs.builtOrReused)}); pull ${((Date.now() - tPull0) / 1000).toFixed(1)} s\n`,
        );
    });
    after(async () => {
        for (const stop of started.reverse()) await stop().catch(() => undefined);
    });

    void test("the program built the app image on the real base and every workload runs that digest", (t) => {
        const w = need(t);
        if (!w) return;
        const out = w.program.outputs as any;
        assert.deepEqual(out.builtOrReused, { base: "reused", app: "built" });
        assert.match(out.appImageRef, new RegExp(`^${w.registry.host.replace(/\./g, "\\.")}/thinlayer/app@sha256:[a-f0-9]{64}$`));
        for (const name of ["app-web", "app-worker-celery", out.migrationJob]) {
            assert.equal(podOf(w, name).containers[0].image, out.appImageRef, name);
        }
        assert.ok(Object.keys(w.secrets).length === 1 && Object.keys(w.configMaps).length === 1, "one ConfigMap and one Secret feed the pods");
    });

    void test("the containers run confined as the pod spec says: UID/GID 10001, read-only root, writable /tmp, no capabilities, no new privileges, its CPU and memory limits", (t) => {
        const w = need(t);
        if (!w) return;
        const job = structuredClone(podOf(w, String(w.program.outputs.migrationJob)));
        // The Job's container with a probe instead of its command: same image, user, mounts, env.
        job.containers[0].command = [
            "/bin/sh",
            "-c",
            "id -u; id -g; id -G; touch /app/x 2>/dev/null && echo root-writable || echo root-read-only; touch /tmp/x && echo tmp-writable; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; " +
                "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); " +
                "echo cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max); printenv DJANGO_ALLOWED_HOSTS",
        ];
        const r = runToEnd(w, plan(w, job, "migrate"), "confined");
        assert.equal(r.code, 0, r.out);
        const lines = r.out.trim().split("\n");
        assert.equal(lines[0], "10001");
        assert.equal(lines[1], "10001");
        assert.ok(lines[2].split(" ").includes("10001"), lines[2]);
        assert.equal(lines[3], "root-read-only");
        assert.equal(lines[4], "tmp-writable");
        assert.match(r.out, /CapEff:\s+0000000000000000/);
        assert.match(r.out, /NoNewPrivs:\s+1/);
        // The limits of the pod spec hold (cgroup v1 or v2).
        const limits = job.containers[0].resources.limits;
        assert.match(r.out, new RegExp(`\nmem=${bytes(limits.memory)}\n`), r.out);
        const cpu = /\ncpu=(\d+) (\d+)\n/.exec(r.out);
        assert.ok(cpu, r.out);
        assert.equal(String(Number(cpu[1]) / Number(cpu[2])), cpus(limits.cpu));
        assert.match(r.out, /\nemr-uat\.example\.com\n?$/);
    });

    void test("migrate (the migration Job's command) migrates the real database, and a rerun is a no-op", (t) => {
        const w = need(t);
        if (!w) return;
        const job = podOf(w, String(w.program.outputs.migrationJob));
        assert.deepEqual(job.containers[0].command, ["python", "manage.py", "migrate", "--noinput"]);
        assert.equal(w.pg.psql("SELECT to_regclass('public.records_patient')", "emr"), "", "the database starts empty");
        const t0 = Date.now();
        const first = runToEnd(w, plan(w, job, "migrate"), "migrate");
        t.diagnostic(`migrate: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        assert.equal(first.code, 0, first.out);
        assert.match(first.out, /Applying records\.0001_initial\.\.\. OK/, first.out);
        assert.equal(w.pg.psql("SELECT to_regclass('public.records_patient')", "emr"), "records_patient");
        assert.equal(w.pg.psql("SELECT to_regclass('public.records_encounter')", "emr"), "records_encounter");
        assert.equal(
            w.pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'records_patient'", "emr"),
            w.pg.user,
            "created by the app's role, through DATABASE_URL",
        );
        assert.equal(w.pg.psql("SELECT count(*) FROM django_migrations WHERE app = 'records' AND name = '0001_initial'", "emr"), "1");
        const again = runToEnd(w, plan(w, job, "migrate"), "migrate");
        assert.equal(again.code, 0, again.out);
        assert.match(again.out, /No migrations to apply/, again.out);
    });

    void test("gunicorn (the web command) passes the readiness probe (its path and Host) with 200, and /healthz reports the database", async (t) => {
        const w = need(t);
        if (!w) return;
        const pod = podOf(w, "app-web");
        const c = pod.containers[0];
        assert.equal(c.command, undefined, "the web container runs the image's CMD");
        const name = runDetached(w, plan(w, pod, "web"), "web");
        const { ip, port, seconds } = await waitStarted(w, name, c);
        t.diagnostic(`web: startup probe passed after ${seconds.toFixed(1)} s`);
        const rp = probe(c, "readinessProbe");
        assert.equal(rp.headers.Host, "emr-uat.example.com", "the probe sends a Host that ALLOWED_HOSTS lists");
        const ready = await get(ip, rp.port, rp.path, rp.headers, rp.timeoutSeconds * 1000);
        assert.equal(ready.status, 200, JSON.stringify(ready));
        assert.deepEqual(JSON.parse(ready.body ?? ""), { status: "ok", database: "ok" });
        assert.ok(ready.ms < rp.timeoutSeconds * 1000, `answered in ${ready.ms} ms, within the probe's ${rp.timeoutSeconds} s`);
        // The answer came from the database: the app's role holds a connection from the pod's IP.
        assert.notEqual(w.pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${w.pg.user}' AND client_addr = '${ip}'`), "0");
        // A page that reads the database, as the ingress forwards it (https at the edge).
        const page = await get(ip, port, "/records/patients/", { Host: "emr-uat.example.com", "X-Forwarded-Proto": "https" });
        assert.equal(page.status, 200, JSON.stringify(page));
        assert.deepEqual(JSON.parse(page.body ?? ""), { patients: [] });

        // The database refuses the app: /healthz says so with 503 (the pod turns unready), then recovers.
        w.pg.psql(`ALTER ROLE ${w.pg.user} NOLOGIN`);
        w.pg.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${w.pg.user}'`);
        let down: Answer | undefined;
        for (let i = 0; i < 20 && down?.status !== 503; i++) down = await get(ip, rp.port, rp.path, rp.headers);
        assert.equal(down?.status, 503, JSON.stringify(down));
        assert.deepEqual(JSON.parse(down?.body ?? ""), { status: "unavailable", database: "OperationalError" });
        w.pg.psql(`ALTER ROLE ${w.pg.user} LOGIN`);
        // Every answer after the database is back is 200: no worker thread reuses a dead
        // persistent connection (CONN_HEALTH_CHECKS), so the pod turns ready at the next probe.
        for (let i = 0; i < 12; i++) {
            const back = await get(ip, rp.port, rp.path, rp.headers);
            assert.equal(back.status, 200, `answer ${i + 1} after the database came back: ${JSON.stringify(back)}`);
        }
        w.dockerd.docker(["rm", "-f", name]);
    });

    void test("stop as Kubernetes does (preStop sleep, then SIGTERM): a request in flight completes; new connections are refused only after the sleep", async (t) => {
        const w = need(t);
        if (!w) return;
        const pod = podOf(w, "app-web");
        const c = pod.containers[0];
        const preStop: string[] = c.lifecycle?.preStop?.exec?.command;
        assert.ok(Array.isArray(preStop) && preStop.length > 0, "the web container has an exec preStop hook");
        const p = plan(w, pod, "web");
        const name = runDetached(w, p, "drain");
        const { ip, port } = await waitStarted(w, name, c);
        const rp = probe(c, "readinessProbe");
        const page = { Host: "emr-uat.example.com", "X-Forwarded-Proto": "https" };

        // A request kept in flight: its query waits on a table lock the test holds.
        const lock = await w.pg.lockTable("records_patient");
        let inflightDone = false;
        const inflight = get(ip, port, "/records/patients/", page, 120_000).then((a) => ((inflightDone = true), a));
        for (let i = 0; i < 100 && w.pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${w.pg.user}' AND wait_event_type = 'Lock'`) === "0"; i++)
            await new Promise((r) => setTimeout(r, 100));
        assert.notEqual(
            w.pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${w.pg.user}' AND wait_event_type = 'Lock'`),
            "0",
            "the request reached the database and waits there",
        );

        // preStop: the kubelet execs the hook and waits for it; the pod still serves meanwhile.
        const tStop = Date.now();
        const hook: ChildProcess = spawn(DOCKER, ["exec", name, ...preStop], { env: { ...process.env, ...w.dockerd.env }, stdio: "ignore" });
        let hookExit: number | null | undefined;
        const hookDone = new Promise<number | null>((r) => hook.once("exit", (code) => r((hookExit = code))));
        // New connections all through the sleep are served (the endpoints are still being updated).
        const during: Answer[] = [];
        while (hookExit === undefined) {
            await new Promise((r) => setTimeout(r, 1000));
            if (hookExit === undefined) during.push(await get(ip, rp.port, rp.path, rp.headers, 2000));
        }
        assert.ok(during.length >= Number(preStop[preStop.length - 1]) - 2, `probed ${during.length} times during the sleep`);
        assert.deepEqual(
            during.map((a) => a.status ?? a.error),
            during.map(() => 200),
            "every new connection during the preStop sleep is served",
        );
        assert.equal(await hookDone, 0, "the preStop hook exits 0");
        const slept = (Date.now() - tStop) / 1000;
        assert.ok(slept >= Number(preStop[preStop.length - 1]) - 0.5, `the preStop hook slept ${slept} s`);
        assert.equal(inflightDone, false, "the request is still in flight when SIGTERM comes");

        // SIGTERM: gunicorn closes its listeners at once and lets the in-flight request finish.
        w.dockerd.docker(["kill", "--signal", "TERM", name]);
        const tTerm = Date.now();
        let after: Answer | undefined;
        for (let i = 0; i < 50; i++) {
            after = await get(ip, rp.port, rp.path, rp.headers, 2000);
            if (after.error === "ECONNREFUSED") break;
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(after?.error, "ECONNREFUSED", `new connections are refused after SIGTERM: ${JSON.stringify(after)}`);
        t.diagnostic(`refused ${Date.now() - tTerm} ms after SIGTERM`);
        assert.equal(inflightDone, false, "the in-flight request was not cut");
        await new Promise((r) => setTimeout(r, 1000));
        await lock.release();
        const done = await inflight;
        assert.equal(done.status, 200, `the in-flight request completes: ${JSON.stringify(done)}\n${logs(w, name).slice(-3000)}`);
        assert.deepEqual(JSON.parse(done.body ?? ""), { patients: [] });
        // The container exits by itself within what is left of the grace period.
        const code = w.dockerd.docker(["wait", name], { timeoutMs: Math.ceil((p.gracePeriodSeconds - slept + 5) * 1000) }).trim();
        const stopped = (Date.now() - tStop) / 1000;
        t.diagnostic(
            `stop: preStop ${slept.toFixed(1)} s, exited ${stopped.toFixed(1)} s after the stop began (grace period ${p.gracePeriodSeconds} s), code ${code}`,
        );
        assert.equal(code, "0", logs(w, name).slice(-3000));
        assert.ok(stopped < p.gracePeriodSeconds, `exited after ${stopped} s, within terminationGracePeriodSeconds ${p.gracePeriodSeconds}`);
    });

    void test("the worker command starts Celery on the broker the settings name, runs a task against the database, and stops warm on SIGTERM", async (t) => {
        const w = need(t);
        if (!w) return;
        const pod = podOf(w, "app-worker-celery");
        const c = pod.containers[0];
        assert.deepEqual(c.command, ["/bin/sh", "-c", "exec celery -A emr worker --loglevel=info"]);
        const p = plan(w, pod, "worker");
        const name = runDetached(w, p, "worker");
        const t0 = Date.now();
        while (!/celery@\S+ ready\./.test(logs(w, name))) {
            const state = w.dockerd.docker(["inspect", "-f", "{{.State.Status}}", name]).trim();
            assert.equal(state, "running", `the worker exited:\n${logs(w, name).slice(-4000)}`);
            assert.ok(Date.now() - t0 < 120_000, `the worker was not ready within 120 s:\n${logs(w, name).slice(-4000)}`);
            await new Promise((r) => setTimeout(r, 500));
        }
        t.diagnostic(`worker ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        assert.match(logs(w, name), /records\.tasks\.count_patients/, "the worker registered the app's task");
        assert.ok(logs(w, name).includes(`transport:   redis://:**@${w.gateway}:${w.redis.port}/0`), "the broker of the Secret (password masked)");
        assert.doesNotMatch(logs(w, name), /Warning/, "no warning at start");

        // Two patients in the database; a task sent through the broker (by a one-off container of
        // the same pod spec) is counted by the worker, and the result comes back through Redis.
        w.pg.psql(
            "INSERT INTO records_patient (medical_record_number, given_name, family_name, date_of_birth, created_at) VALUES ('MRN-1', 'Ada', 'Lovelace', '1815-12-10', now()), ('MRN-2', 'Alan', 'Turing', '1912-06-23', now())",
            "emr",
        );
        const sender = structuredClone(podOf(w, String(w.program.outputs.migrationJob)));
        sender.containers[0].command = [
            "python",
            "manage.py",
            "shell",
            "-c",
            "from records.tasks import count_patients; r = count_patients.delay(); print('result', r.get(timeout=60))",
        ];
        const sent = runToEnd(w, plan(w, sender, "migrate"), "send");
        assert.equal(sent.code, 0, sent.out);
        assert.match(sent.out, /result 2\b/, sent.out);
        assert.match(logs(w, name), /Task records\.tasks\.count_patients\[[0-9a-f-]+\] succeeded in [\d.]+s: 2/, logs(w, name).slice(-3000));

        // SIGTERM (no preStop on the worker): Celery's warm shutdown, exit 0.
        w.dockerd.docker(["kill", "--signal", "TERM", name]);
        const code = w.dockerd.docker(["wait", name], { timeoutMs: (p.gracePeriodSeconds + 5) * 1000 }).trim();
        assert.equal(code, "0", logs(w, name).slice(-3000));
        assert.match(logs(w, name), /worker: Warm shutdown/, logs(w, name).slice(-3000));
        w.pg.psql("DELETE FROM records_patient", "emr");
    });
});
