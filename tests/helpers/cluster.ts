/**
 * A real Kubernetes control plane for tests, with pods simulated by kwok: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok, each on free 127.0.0.1 ports with its own temp
 * dir, certificates made here with openssl. The binaries come from scripts/tools/kube.sh (PATH or
 * `$THINLAYER_CACHE/bin`). kwok plays the stages of kwok-stages.ts: Deployment pods become Ready,
 * Job pods complete, deleted pods go away at once. To make a Job fail: give its pod template the
 * label `FAIL_LABEL: "true"` (exit code from the `FAIL_EXIT_CODE_ANNOTATION` annotation, default 1),
 * or, for a Job the test does not write, call `cluster.failPodsOfJob(name)` before it is created.
 */
import { spawn, execFile, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { freePort } from "./registry";
import { baseStages, failJobStage, stageCrd } from "./kwok-stages";
import { findTool, needBuiltTools, openssl } from "./tools";

export { FAIL_EXIT_CODE_ANNOTATION, FAIL_LABEL } from "./kwok-stages";
/** The one simulated node's name. */
export const NODE_NAME = "kwok-node-0";

export const CLUSTER_TOOLS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl", "openssl"] as const;
const INSTALL_HINT =
    "bash scripts/tools/kube.sh; openssl: apt-get install -y openssl; kubectl: /usr/bin/kubectl of the machine image (Debian's kubernetes-client is 1.20, too old)";

export interface ClusterOptions {
    /** The kubeconfig's context (and cluster and user) name. @default "e2e" */
    context?: string;
    /** How long to wait for the control plane and the node. @default 60 s */
    timeoutMs?: number;
}

export interface StartedCluster {
    /** A kubeconfig with the CA and an admin (system:masters) client certificate inline. */
    kubeconfigPath: string;
    context: string;
    /** `https://127.0.0.1:PORT` */
    server: string;
    /** Every loopback port the cluster listens on, by component (for checking they are released). */
    ports: Record<string, number>;
    /** Runs /usr/bin/kubectl against this cluster; resolves stdout, rejects with stderr on a non-zero exit. */
    kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
    /**
     * Makes every pod of the Job named `job` (any namespace) fail with `exitCode` (default 1) until
     * `remove()`: a kwok Stage added to the running cluster. Call it before the Job's pods start.
     */
    failPodsOfJob(job: string, exitCode?: number): Promise<{ remove(): Promise<void> }>;
    /** A component's log so far (for failure messages). */
    logTail(component: string, chars?: number): string;
    /** Kills every component (SIGTERM, SIGKILL after 5 s) and removes all files. Idempotent. */
    stop(): Promise<void>;
}

/** The tools' paths, or undefined (after t.skip) when one is missing locally; throws under CI=true. */
export function needClusterTools(t: TestContext): Record<string, string> | undefined {
    return needBuiltTools(t, INSTALL_HINT, ...CLUSTER_TOOLS);
}

/** The tools' paths (PATH, then `$THINLAYER_CACHE/bin`); throws naming the missing ones and the fix. */
export function clusterTools(): Record<string, string> {
    const tools: Record<string, string> = {};
    const missing = CLUSTER_TOOLS.filter((name) => {
        const p = findTool(name);
        if (p) tools[name] = p;
        return p === undefined;
    });
    if (missing.length)
        throw new Error(`startCluster: missing tools ${missing.join(", ")} (looked on PATH and in $THINLAYER_CACHE/bin); build them with: ${INSTALL_HINT}`);
    return tools;
}

type Component = { name: string; proc: ChildProcess; log: string };

/** Processes of clusters not yet stopped: killed if the test process exits without stop(). */
const live = new Set<ChildProcess>();
process.once("exit", () => {
    for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

/** A CA, the apiserver's serving cert, an admin client cert (O=system:masters), a service-account key pair. */
function makePki(dir: string): void {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=thinlayer-test-ca"]);
    const sign = (name: string, subj: string, ext: string) => {
        openssl(dir, ["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj]);
        fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
        openssl(dir, [
            "x509",
            "-req",
            "-in",
            `${name}.csr`,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            `${name}.crt`,
            "-extfile",
            `${name}.ext`,
        ]);
    };
    // 10.0.0.1 is the `kubernetes` Service's IP in --service-cluster-ip-range below.
    sign(
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
            "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
    );
    sign(
        "admin",
        "/O=system:masters/CN=thinlayer-admin",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    );
    openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key"]);
    openssl(dir, ["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

function kubeconfig(pki: string, server: string, context: string): string {
    const b64 = (f: string) => fs.readFileSync(path.join(pki, f)).toString("base64");
    return JSON.stringify(
        {
            apiVersion: "v1",
            kind: "Config",
            clusters: [{ name: context, cluster: { server, "certificate-authority-data": b64("ca.crt") } }],
            users: [{ name: `${context}-admin`, user: { "client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key") } }],
            contexts: [{ name: context, context: { cluster: context, user: `${context}-admin` } }],
            "current-context": context,
        },
        null,
        2,
    );
}

/** GET over HTTPS with the admin client cert; resolves status and body (never rejects on HTTP errors). */
function get(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; insecure?: boolean }): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = https.get(url, { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: 2000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
    });
}

function tail(file: string, chars: number): string {
    try {
        const s = fs.readFileSync(file, "utf8");
        return s.slice(-chars);
    } catch {
        return "(no log)";
    }
}

/**
 * Starts the cluster; resolves once /readyz is ok, the controllers answer /healthz and the kwok node
 * is Ready. `tools` from needClusterTools (or clusterTools() when omitted).
 */
export async function startCluster(tools: Record<string, string> = clusterTools(), opts: ClusterOptions = {}): Promise<StartedCluster> {
    const context = opts.context ?? "e2e";
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-cluster-"));
    const components: Component[] = [];
    const ports: Record<string, number> = {};
    // Distinct ports: freePort releases each at once, so ask until the set has no repeats.
    for (const name of ["etcd-client", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]) {
        let p = await freePort();
        while (Object.values(ports).includes(p)) p = await freePort();
        ports[name] = p;
    }
    const dirOf = (name: string) => {
        const d = path.join(root, name);
        fs.mkdirSync(d, { recursive: true });
        return d;
    };
    const pki = dirOf("pki");
    const server = `https://127.0.0.1:${ports["kube-apiserver"]}`;
    const kubeconfigPath = path.join(root, "kubeconfig");
    let stopped = false;

    const run = (name: string, args: string[]): Component => {
        const cwd = dirOf(name);
        const log = path.join(cwd, `${name}.log`);
        const out = fs.openSync(log, "a");
        const proc = spawn(tools[name], args, { cwd, env: { ...process.env, HOME: cwd }, stdio: ["ignore", out, out] });
        fs.closeSync(out);
        live.add(proc);
        proc.once("exit", () => live.delete(proc));
        const c = { name, proc, log };
        components.push(c);
        return c;
    };
    const logTail = (component: string, chars = 3000) => tail(path.join(root, component, `${component}.log`), chars);

    const stop = async () => {
        if (stopped) return;
        stopped = true;
        // Clients first, etcd last, so nothing logs a storm of connection errors while dying.
        for (const c of [...components].reverse()) {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
            const exited = new Promise((r) => c.proc.once("exit", r));
            c.proc.kill("SIGTERM");
            const t = setTimeout(() => c.proc.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(t);
        }
        fs.rmSync(root, { recursive: true, force: true });
    };

    const kubectl = (args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
        new Promise<string>((resolve, reject) => {
            const child = execFile(
                tools.kubectl,
                ["--kubeconfig", kubeconfigPath, "--context", context, ...args],
                { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
                (err, stdout, stderr) => {
                    if (err) reject(new Error(`kubectl ${args.join(" ")} failed (${err.code ?? err.signal}): ${stderr || err.message}`));
                    else resolve(stdout);
                },
            );
            child.stdin?.end(o.input ?? "");
        });

    /** Polls `check` until it returns true; a component that exits early fails at once with its log. */
    const waitFor = async (what: string, check: () => Promise<boolean>) => {
        while (Date.now() < deadline) {
            const dead = components.find((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
            if (dead)
                throw new Error(
                    `${dead.name} exited (${dead.proc.exitCode ?? dead.proc.signalCode}) while waiting for ${what}; its log:\n${tail(dead.log, 4000)}`,
                );
            if (await check().catch(() => false)) return;
            await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`timed out waiting for ${what}; logs:\n${components.map((c) => `--- ${c.name}\n${tail(c.log, 1500)}`).join("\n")}`);
    };

    try {
        makePki(pki);
        fs.writeFileSync(kubeconfigPath, kubeconfig(pki, server, context), { mode: 0o600 });
        const p = (f: string) => path.join(pki, f);
        const tls = { ca: fs.readFileSync(p("ca.crt")), cert: fs.readFileSync(p("admin.crt")), key: fs.readFileSync(p("admin.key")) };

        const etcdUrl = `http://127.0.0.1:${ports["etcd-client"]}`;
        const peerUrl = `http://127.0.0.1:${ports["etcd-peer"]}`;
        run("etcd", [
            "--name=test",
            `--data-dir=${path.join(root, "etcd", "data")}`,
            `--listen-client-urls=${etcdUrl}`,
            `--advertise-client-urls=${etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=test=${peerUrl}`,
            // A throwaway store: fsync buys nothing and costs seconds on a busy 2-core disk.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]);
        await waitFor("etcd /health", async () => {
            const r = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(1000) });
            return r.ok && (await r.text()).includes('"health":"true"');
        });

        run("kube-apiserver", [
            `--etcd-servers=${etcdUrl}`,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            `--secure-port=${ports["kube-apiserver"]}`,
            `--cert-dir=${path.join(root, "kube-apiserver")}`,
            `--tls-cert-file=${p("apiserver.crt")}`,
            `--tls-private-key-file=${p("apiserver.key")}`,
            `--client-ca-file=${p("ca.crt")}`,
            `--service-account-key-file=${p("sa.pub")}`,
            `--service-account-signing-key-file=${p("sa.key")}`,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=Node,RBAC",
            // A loopback advertise address is not a valid Endpoints IP; no kubelet needs the Service.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]);
        await waitFor("kube-apiserver /readyz", async () => {
            const r = await get(`${server}/readyz`, tls);
            return r.status === 200 && r.body.trim() === "ok";
        });

        const common = [`--kubeconfig=${kubeconfigPath}`, "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false"];
        run("kube-controller-manager", [
            ...common,
            `--secure-port=${ports["kube-controller-manager"]}`,
            `--cert-dir=${path.join(root, "kube-controller-manager")}`,
            `--service-account-private-key-file=${p("sa.key")}`,
            `--root-ca-file=${p("ca.crt")}`,
            "--controllers=*",
            "--use-service-account-credentials=false",
        ]);
        run("kube-scheduler", [...common, `--secure-port=${ports["kube-scheduler"]}`, `--cert-dir=${path.join(root, "kube-scheduler")}`]);
        // Stages as objects (not --config) so failPodsOfJob can add one while kwok runs.
        await kubectl(["apply", "-f", "-"], { input: JSON.stringify(stageCrd()) });
        await kubectl(["wait", "--for=condition=Established", "crd/stages.kwok.x-k8s.io", "--timeout=30s"]);
        await kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: baseStages() }) });
        // HOME is kwok's own dir: kwok reads ~/.kwok/kwok.yaml when it exists, and the user's is
        // not the test's (a config file of ours would need every option: its zeros are not defaults).
        run("kwok", [
            `--kubeconfig=${kubeconfigPath}`,
            "--enable-crds=Stage",
            "--manage-all-nodes=true",
            // The node's "kubelet" (logs, exec) is kwok's own server on loopback; pod IPs are only
            // data (no kube-proxy, nothing dials them) but must not be loopback, or Endpoints reject them.
            "--node-ip=127.0.0.1",
            `--node-port=${ports.kwok}`,
            `--server-address=127.0.0.1:${ports.kwok}`,
            "--cidr=10.244.0.0/16",
            "--node-lease-duration-seconds=40",
        ]);
        // The node object itself: kwok manages nodes, it does not create them.
        await kubectl(["apply", "-f", "-"], {
            input: JSON.stringify({
                apiVersion: "v1",
                kind: "Node",
                metadata: {
                    name: NODE_NAME,
                    annotations: { "node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake" },
                    labels: { "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: "kwok" },
                },
            }),
        });
        for (const name of ["kube-controller-manager", "kube-scheduler"]) {
            await waitFor(`${name} /healthz`, async () => (await get(`https://127.0.0.1:${ports[name]}/healthz`, { insecure: true })).status === 200);
        }
        await waitFor(`node ${NODE_NAME} Ready`, async () => {
            const r = await get(`${server}/api/v1/nodes/${NODE_NAME}`, tls);
            if (r.status !== 200) return false;
            const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
            return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
        });
        // Pods need the namespace's `default` ServiceAccount (admission); wait for the controller to make it.
        await waitFor(
            "ServiceAccount default/default",
            async () => (await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)).status === 200,
        );
    } catch (e) {
        await stop();
        throw e;
    }
    const failPodsOfJob = async (job: string, exitCode = 1) => {
        const { name, object } = failJobStage(job, exitCode);
        await kubectl(["apply", "-f", "-"], { input: JSON.stringify(object) });
        return { remove: async () => void (await kubectl(["delete", "stage", name, "--ignore-not-found"])) };
    };
    return { kubeconfigPath, context, server, ports, kubectl, failPodsOfJob, logTail, stop };
}
