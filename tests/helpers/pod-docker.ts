/**
 * Runs a container of a Kubernetes pod spec with the Docker engine the way the kubelet would run
 * it: the same user and groups, read-only root filesystem, capabilities, no-new-privileges, the
 * emptyDir volumes (as tmpfs), the env of envFrom (ConfigMap, Secret) and env, the CPU and memory
 * limits, and command/args over the image's ENTRYPOINT/CMD (Kubernetes semantics).
 *
 * Every field of the pod spec and the container is either translated here or named as not
 * affecting how the process runs (probes, lifecycle, ports: the test drives them itself); any
 * other field is an error, so a pod-spec change the emulation does not cover fails the tests
 * instead of being silently ignored.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/* eslint-disable @typescript-eslint/no-explicit-any -- pod specs recorded from the program are untyped JSON */
type Json = Record<string, any>;

/** Fields that do not change how the container's process runs; the tests use them directly. */
const CONTAINER_DRIVEN_BY_TEST = new Set(["name", "image", "ports", "startupProbe", "readinessProbe", "livenessProbe", "lifecycle"]);
const CONTAINER_TRANSLATED = new Set(["command", "args", "env", "envFrom", "resources", "securityContext", "volumeMounts"]);
/** Pod fields: restartPolicy Never is docker's default; the grace period is returned for the stop. */
const POD_TRANSLATED = new Set(["containers", "securityContext", "volumes", "automountServiceAccountToken", "terminationGracePeriodSeconds", "restartPolicy"]);

export interface DockerRunPlan {
    /** `docker run` flags (before the image). */
    flags: string[];
    /** The image, then the arguments after it. */
    imageAndArgs: string[];
    /** The container spec (for probes, lifecycle and ports). */
    container: Json;
    /** terminationGracePeriodSeconds (Kubernetes' default 30). */
    gracePeriodSeconds: number;
}

function fail(where: string, value: unknown, fix: string): never {
    throw new Error(`pod spec ${where}: got ${JSON.stringify(value)}; tests/helpers/pod-docker.ts does not emulate it. Fix: ${fix}`);
}

/** A Kubernetes CPU quantity ("1", "500m", "2") as docker's --cpus. */
export function cpus(q: string): string {
    const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(q);
    if (!m) fail("resources.limits.cpu", q, "use cores or millicores (1, 500m)");
    return String(m[2] === "m" ? Number(m[1]) / 1000 : Number(m[1]));
}

/** A Kubernetes memory quantity ("512Mi", "1Gi", "256M") in bytes. */
export function bytes(q: string): number {
    const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
    if (!m) fail("a memory quantity", q, "use a plain Kubernetes quantity such as 512Mi or 1Gi");
    const mult: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
    return Number(m[1]) * mult[m[2] ?? ""];
}

/**
 * Translates `pod.containers[name]` into a docker run. `configMaps`/`secrets` map object names to
 * their data (what envFrom reads). The env goes to `envFile` (mode 0600), never onto argv.
 */
export function dockerRun(
    pod: Json,
    containerName: string,
    o: { configMaps: Record<string, Record<string, string>>; secrets: Record<string, Record<string, string>>; envFile: string },
): DockerRunPlan {
    for (const k of Object.keys(pod))
        if (!POD_TRANSLATED.has(k)) fail(`field ${k}`, pod[k], "translate it in dockerRun, or tell why it does not affect the process");
    const c: Json | undefined = (pod.containers as Json[]).find((x) => x.name === containerName);
    if (!c)
        fail(
            "containers",
            (pod.containers as Json[]).map((x) => x.name),
            `name a container the pod has, not ${containerName}`,
        );
    if ((pod.containers as Json[]).length !== 1)
        fail("containers", pod.containers.length, "run each container of a multi-container pod in one network namespace");
    for (const k of Object.keys(c))
        if (!CONTAINER_DRIVEN_BY_TEST.has(k) && !CONTAINER_TRANSLATED.has(k)) fail(`container field ${k}`, c[k], "translate it in dockerRun");
    const flags: string[] = [];

    // Identity: the container's securityContext over the pod's.
    const psc: Json = pod.securityContext ?? {};
    const csc: Json = c.securityContext ?? {};
    for (const k of Object.keys(psc))
        if (!["runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"].includes(k)) fail(`securityContext.${k}`, psc[k], "translate it");
    for (const k of Object.keys(csc))
        if (!["runAsNonRoot", "runAsUser", "runAsGroup", "allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities"].includes(k))
            fail(`container securityContext.${k}`, csc[k], "translate it");
    const uid = csc.runAsUser ?? psc.runAsUser;
    const gid = csc.runAsGroup ?? psc.runAsGroup;
    if (uid === undefined) fail("runAsUser", uid, "set runAsUser (runAsNonRoot alone needs the image's numeric USER)");
    if ((csc.runAsNonRoot ?? psc.runAsNonRoot) === true && uid === 0) fail("runAsNonRoot with runAsUser", uid, "the kubelet refuses to start it");
    flags.push("--user", gid === undefined ? String(uid) : `${uid}:${gid}`);
    if (psc.fsGroup !== undefined) flags.push("--group-add", String(psc.fsGroup)); // the kubelet adds fsGroup to the process's groups
    const seccomp = psc.seccompProfile?.type;
    if (seccomp !== undefined && seccomp !== "RuntimeDefault")
        fail("seccompProfile.type", seccomp, "RuntimeDefault is docker's default profile; translate others");
    if (csc.allowPrivilegeEscalation === false) flags.push("--security-opt", "no-new-privileges");
    if (csc.readOnlyRootFilesystem === true) flags.push("--read-only");
    for (const cap of csc.capabilities?.drop ?? []) flags.push("--cap-drop", cap);
    for (const cap of csc.capabilities?.add ?? []) flags.push("--cap-add", cap);

    // Volumes: only emptyDir, as tmpfs (exec allowed, as an emptyDir is; the sizeLimit as its size).
    const volumes = new Map<string, Json>(((pod.volumes ?? []) as Json[]).map((v) => [v.name, v]));
    for (const m of (c.volumeMounts ?? []) as Json[]) {
        const v = volumes.get(m.name);
        if (!v) fail("volumeMounts", m.name, "mount a volume the pod declares");
        if (!v.emptyDir || Object.keys(v).some((k) => k !== "name" && k !== "emptyDir"))
            fail(`volume ${m.name}`, v, "translate volume types other than emptyDir");
        if (Object.keys(m).some((k) => k !== "name" && k !== "mountPath")) fail(`volumeMount ${m.name}`, m, "translate subPath/readOnly");
        const size = v.emptyDir.sizeLimit === undefined ? "" : `,size=${bytes(v.emptyDir.sizeLimit)}`;
        flags.push("--tmpfs", `${m.mountPath}:rw,exec,mode=1777${size}`);
    }

    // Limits (requests only place the pod).
    const lim: Json = c.resources?.limits ?? {};
    for (const k of Object.keys(lim)) if (k !== "cpu" && k !== "memory") fail(`resources.limits.${k}`, lim[k], "translate it");
    if (lim.cpu !== undefined) flags.push("--cpus", cpus(lim.cpu));
    if (lim.memory !== undefined) flags.push("--memory", String(bytes(lim.memory)));

    // Environment: envFrom in order, then env (later wins, as in Kubernetes).
    const env: Record<string, string> = {};
    for (const from of (c.envFrom ?? []) as Json[]) {
        const [kind, ref] = from.configMapRef
            ? ["configMapRef", from.configMapRef]
            : from.secretRef
              ? ["secretRef", from.secretRef]
              : fail("envFrom", from, "translate it");
        const data = (kind === "configMapRef" ? o.configMaps : o.secrets)[ref.name];
        if (data === undefined) fail(`envFrom.${kind}`, ref.name, `pass the ${kind === "configMapRef" ? "ConfigMap" : "Secret"}'s data`);
        Object.assign(env, data);
    }
    for (const e of (c.env ?? []) as Json[]) {
        if (typeof e.value !== "string") fail(`env ${e.name}`, e, "translate valueFrom");
        env[e.name] = e.value;
    }
    for (const [k, v] of Object.entries(env))
        if (/[\n\r]/.test(v)) fail(`env ${k}`, "(a value with a newline)", "docker's --env-file cannot carry it; pass it another way");
    fs.mkdirSync(path.dirname(o.envFile), { recursive: true, mode: 0o700 });
    fs.writeFileSync(
        o.envFile,
        Object.entries(env)
            .map(([k, v]) => `${k}=${v}\n`)
            .join(""),
        { mode: 0o600 },
    );
    flags.push("--env-file", o.envFile);

    // command replaces ENTRYPOINT and drops CMD; args replace CMD.
    const command: string[] | undefined = c.command;
    const args: string[] | undefined = c.args;
    const imageAndArgs = [c.image as string];
    if (command && command.length) {
        flags.push("--entrypoint", command[0]);
        imageAndArgs.push(...command.slice(1), ...(args ?? []));
    } else if (args) {
        imageAndArgs.push(...args);
    }
    return { flags, imageAndArgs, container: c, gracePeriodSeconds: pod.terminationGracePeriodSeconds ?? 30 };
}
