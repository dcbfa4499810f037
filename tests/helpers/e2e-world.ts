/**
 * The world an e2e scenario deploys into: a copy of this project, a real Distribution registry
 * holding the Debian-made python stand-in, a local Kubernetes control plane with kwok nodes, and
 * the real Pulumi engine on a file backend. Shared by tests/e2e and bench/e2e.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as YAML from "yaml";
import { startRegistry, type StartedRegistry } from "./registry";
import { clusterTools as defaultClusterTools, CLUSTER_TOOLS, startCluster, type StartedCluster } from "./cluster";
import { pushPythonStandIn } from "./example-base";
import { startDockerd, type StartedDockerd } from "./dockerd";
import { copyProject, PulumiProject, type EngineEvent } from "./pulumi";

export interface World {
    dir: string;
    appDir: string;
    project: PulumiProject;
    registry: StartedRegistry;
    cluster: StartedCluster;
    /** The python stand-in in the world's registry (the base's PYTHON_IMAGE). */
    pythonRef: string;
    stop(): Promise<void>;
}

/** The tools an e2e world needs besides the engine's plugins (engineToolsOrSkip checks those). */
export const E2E_TOOLS = ["pulumi", "docker-registry", "dockerd", "skopeo", ...CLUSTER_TOOLS];

/** The builder the e2e stacks use for the base image (what CI has). */
export const E2E_BUILDER = process.env.THINLAYER_E2E_BUILDER ?? "docker";

export async function startWorld(clusterTools: Record<string, string> = defaultClusterTools()): Promise<World> {
    const registry = await startRegistry();
    let cluster: StartedCluster | undefined;
    let dockerd: StartedDockerd | undefined;
    try {
        cluster = await startCluster(clusterTools, { context: "e2e" });
        // The docker builder (the base image) talks to a daemon of the world's own; the engine
        // passes its environment down to the command provider and so to `thinlayer ensure`.
        dockerd = E2E_BUILDER === "docker" ? await startDockerd() : undefined;
        const pythonRef = await pushPythonStandIn(registry.host);
        const dir = copyProject();
        const project = new PulumiProject(dir, dockerd?.env ?? {});
        const world: World = {
            dir,
            appDir: path.join(dir, "examples", "django-app"),
            project,
            registry,
            cluster,
            pythonRef,
            stop: async () => {
                project.cleanup();
                await cluster?.stop();
                await dockerd?.stop();
                await registry.stop();
                fs.rmSync(dir, { recursive: true, force: true });
            },
        };
        return world;
    } catch (e) {
        await cluster?.stop();
        await dockerd?.stop();
        await registry.stop();
        throw e;
    }
}

/** Non-secret config of an e2e stack: the example's uat/prod settings, pointed at the world. */
export function stackConfig(world: World, stack: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        "thinlayer:registry": world.registry.host,
        "thinlayer:builder": E2E_BUILDER,
        "thinlayer:buildArgs": [`PYTHON_IMAGE=${world.pythonRef}`],
        "thinlayer:namespace": stack,
        "thinlayer:kubeContext": world.cluster.context,
        "thinlayer:lifecycleStacks": ["e2e-uat", "e2e-prod"],
        "thinlayer:webReplicas": 2,
        "thinlayer:workerReplicas": 1,
        "thinlayer:workers": ["celery=celery -A emr worker --loglevel=info"],
        "thinlayer:migrationDeadlineSeconds": 60,
        "thinlayer:settings": ["DJANGO_DEBUG=false", `DJANGO_ALLOWED_HOSTS=${stack}.example.com`, "DJANGO_LOG_LEVEL=INFO"],
        ...extra,
    };
}

/** The secret values the e2e stacks get (the test asserts none of them shows up in plain text). */
export const E2E_SECRETS = {
    DJANGO_SECRET_KEY: "e2e-django-secret-key-1f7c2a9d4b6e8f0a3c5d7e9f",
    DATABASE_URL: "postgres://emr:e2e-db-password-8d2f4a6c@db.internal:5432/emr",
};

/** `pulumi stack init` with the passphrase provider, then the stack file and the secrets. */
export async function initStack(world: World, stack: string, extra: Record<string, unknown> = {}): Promise<void> {
    await world.project.ok(["stack", "init", stack, "--secrets-provider", "passphrase"]);
    writeStackConfig(world, stack, stackConfig(world, stack, extra));
    const kubeconfig = fs.readFileSync(world.cluster.kubeconfigPath, "utf8");
    await world.project.ok(["config", "set", "--stack", stack, "--secret", "thinlayer:kubeconfig"], { input: kubeconfig });
    const pairs = Object.entries(E2E_SECRETS).map(([k, v]) => `${k}=${v}`);
    for (const [i, pair] of pairs.entries()) {
        await world.project.ok(["config", "set", "--stack", stack, "--secret", "--path", `thinlayer:secretSettings[${i}]`, pair]);
    }
}

/** Merges `values` into Pulumi.<stack>.yaml's config (keeps the encryption salt and secrets); undefined removes a key. */
export function writeStackConfig(world: World, stack: string, values: Record<string, unknown>): void {
    const file = path.join(world.dir, `Pulumi.${stack}.yaml`);
    const doc = (fs.existsSync(file) ? YAML.parse(fs.readFileSync(file, "utf8")) : {}) as { config?: Record<string, unknown> };
    doc.config = { ...(doc.config ?? {}), ...values };
    for (const [k, v] of Object.entries(values)) if (v === undefined) delete doc.config[k];
    fs.writeFileSync(file, YAML.stringify(doc));
}

export function readStackConfig(world: World, stack: string): Record<string, unknown> {
    const file = path.join(world.dir, `Pulumi.${stack}.yaml`);
    return (YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> }).config ?? {};
}

/** The stdout JSON of each ensure Command the engine ran in an update, by resource name. */
export function ensureRuns(events: EngineEvent[]): Map<string, { action: string; how: string; ref: string; bytesUploaded: number }> {
    const runs = new Map<string, { action: string; how: string; ref: string; bytesUploaded: number }>();
    for (const e of events) {
        const m = e.resOutputsEvent?.metadata;
        if (!m || m.type !== "command:local:Command") continue;
        if (m.op !== "create" && m.op !== "create-replacement" && m.op !== "update") continue;
        const stdout = m.new?.outputs?.stdout;
        if (typeof stdout !== "string") continue;
        const name = m.urn.slice(m.urn.lastIndexOf("::") + 2);
        runs.set(name, JSON.parse(stdout) as { action: string; how: string; ref: string; bytesUploaded: number });
    }
    return runs;
}

/** Registry writes (PUT/POST/PATCH requests) in its access log so far. */
export function registryWrites(world: World): string[] {
    const log = fs.readFileSync(world.registry.logFile, "utf8");
    return log.split("\n").filter((l) => /"(PUT|POST|PATCH|DELETE) \/v2\//.test(l));
}

/** Tags of a repository in the world's registry. */
export async function registryTags(world: World, repository: string): Promise<string[]> {
    const r = await fetch(`http://${world.registry.host}/v2/${repository}/tags/list`);
    if (r.status === 404) return [];
    const body = (await r.json()) as { tags?: string[] | null };
    return (body.tags ?? []).sort();
}

/** True when the registry has the manifest `repo@digest` (ref: host/repo@sha256:…). */
export async function registryHas(ref: string): Promise<boolean> {
    const m = /^([^/]+)\/(.+)@(sha256:[a-f0-9]{64})$/.exec(ref);
    if (!m) return false;
    const r = await fetch(`http://${m[1]}/v2/${m[2]}/manifests/${m[3]}`, {
        method: "HEAD",
        headers: {
            accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json",
        },
    });
    return r.status === 200;
}

/** A Kubernetes object as JSON, through kubectl and the world's kubeconfig. */
export function kubectlJson<T = Record<string, unknown>>(world: World, args: string[]): T {
    const r = spawnSync("kubectl", ["--kubeconfig", world.cluster.kubeconfigPath, "--context", world.cluster.context, ...args, "-o", "json"], {
        encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
}

/** The container images of every Deployment in a namespace, by Deployment name. */
export function deploymentImages(world: World, namespace: string): Record<string, string[]> {
    const list = kubectlJson<{ items: { metadata: { name: string }; spec: { template: { spec: { containers: { image: string }[] } } } }[] }>(world, [
        "-n",
        namespace,
        "get",
        "deployments",
    ]);
    return Object.fromEntries(list.items.map((d) => [d.metadata.name, d.spec.template.spec.containers.map((c) => c.image)]));
}

/** Appends a line to a file of the world's example app (an edit that changes its content hash). */
export function editApp(world: World, rel: string, line: string): void {
    fs.appendFileSync(path.join(world.appDir, rel), `${line}\n`);
}
