/**
 * Pure renderers of the Kubernetes objects of a release (plain objects; image refs and names may be
 * Outputs). The Release component only instantiates them, so tests can assert on, and schema-check,
 * exactly what a deploy sends.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";

type PodSpec = k8s.types.input.core.v1.PodSpec;
type Container = k8s.types.input.core.v1.Container;

/** Settings every pod of a release shares. */
export interface PodSettings {
    /** The app image by digest, `host/repo@sha256:…`. */
    image: pulumi.Input<string>;
    /** ConfigMap holding the non-secret settings. */
    configMapName: pulumi.Input<string>;
    /** Secret holding the secret settings. */
    secretName: pulumi.Input<string>;
    cpuRequest: string;
    memoryRequest: string;
    cpuLimit: string;
    memoryLimit: string;
    /** Numeric UID/GID the containers run as (the app Dockerfile's USER). */
    runAsUser: number;
}

/** Labels that identify a component of the app. Selectors use exactly these: never a version or an image. */
function selectorLabels(app: string, component: string): Record<string, string> {
    return { "app.kubernetes.io/name": app, "app.kubernetes.io/component": component };
}

/** Selector labels plus the ones that describe, but never select. */
export function objectLabels(app: string, component: string): Record<string, string> {
    return { ...selectorLabels(app, component), "app.kubernetes.io/part-of": app, "app.kubernetes.io/managed-by": "thinlayer" };
}

/** A hardened container: non-root, read-only root filesystem, no capabilities, no privilege escalation, writable /tmp only. */
export function container(name: string, s: PodSettings, extra: Partial<Container>): Container {
    return {
        name,
        image: s.image,
        envFrom: [{ configMapRef: { name: s.configMapName } }, { secretRef: { name: s.secretName } }],
        resources: {
            requests: { cpu: s.cpuRequest, memory: s.memoryRequest },
            limits: { cpu: s.cpuLimit, memory: s.memoryLimit },
        },
        securityContext: {
            runAsNonRoot: true,
            runAsUser: s.runAsUser,
            runAsGroup: s.runAsUser,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
        },
        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
        ...extra,
    };
}

/** Pod spec around one container: non-root pod security context, an emptyDir for /tmp, no service-account token. */
export function podSpec(s: PodSettings, main: Container, extra: Partial<PodSpec> = {}): PodSpec {
    return {
        automountServiceAccountToken: false,
        securityContext: {
            runAsNonRoot: true,
            runAsUser: s.runAsUser,
            runAsGroup: s.runAsUser,
            fsGroup: s.runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
        },
        containers: [main],
        volumes: [{ name: "tmp", emptyDir: { sizeLimit: "256Mi" } }],
        ...extra,
    };
}

export interface WebOptions {
    app: string;
    name: string;
    namespace: pulumi.Input<string>;
    replicas: number;
    port: number;
    healthPath: string;
    /** Host header the probes send (Django rejects hosts outside ALLOWED_HOSTS). */
    probeHost?: string;
    /** Seconds the preStop hook waits so endpoints drop the pod before it stops accepting. */
    drainSeconds: number;
    revisionHistoryLimit: number;
    releaseId?: string;
}

/** Zero-downtime rollout: a new pod must be Ready before an old one goes. */
const ROLLING_UPDATE = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } as const;

/** The web Deployment: gunicorn on `port`, probed on `healthPath`, drained on stop. */
export function webDeployment(o: WebOptions, s: PodSettings): k8s.types.input.apps.v1.Deployment {
    const httpGet = { path: o.healthPath, port: "http", httpHeaders: o.probeHost ? [{ name: "Host", value: o.probeHost }] : undefined };
    const main = container("web", s, {
        ports: [{ name: "http", containerPort: o.port, protocol: "TCP" }],
        env: [{ name: "PORT", value: String(o.port) }],
        // Startup: up to 2 minutes for the first answer; readiness gates traffic on the app and its
        // database (healthPath checks both); liveness only asks whether the process still accepts
        // connections, so a database outage makes pods unready, not restarted in a loop.
        startupProbe: { httpGet, periodSeconds: 2, failureThreshold: 60, timeoutSeconds: 2 },
        readinessProbe: { httpGet, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2 },
        livenessProbe: { tcpSocket: { port: "http" }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
        lifecycle: { preStop: { exec: { command: ["sleep", String(o.drainSeconds)] } } },
    });
    return deployment(
        o.app,
        "web",
        o.name,
        o.namespace,
        o.replicas,
        o.revisionHistoryLimit,
        o.releaseId,
        podSpec(s, main, { terminationGracePeriodSeconds: o.drainSeconds + 30 }),
    );
}

export interface WorkerOptions {
    app: string;
    /** Worker name from config (e.g. "celery"). */
    worker: string;
    name: string;
    namespace: pulumi.Input<string>;
    command: string;
    replicas: number;
    drainSeconds: number;
    revisionHistoryLimit: number;
    releaseId?: string;
}

/**
 * Seconds a new worker pod must run without a container crash before it counts as available, so
 * the rolling update (maxUnavailable 0) removes an old worker only once the new one has stayed up.
 * A worker that fails at start (an import error, a bad setting, a missing secret) crashes well
 * within this (the example's celery worker is up in 3.5-6 s, tests/example/container.test.ts), and
 * the rollout stops with the old workers running. Every rollout waits this long, so it is the
 * policy pack's minimum, not more.
 */
export const WORKER_MIN_READY_SECONDS = 10;

/**
 * A worker Deployment: the configured command through `sh -c exec …` (so the command line may use
 * the shell's word splitting, and the process gets the signals). No HTTP port, and the command is
 * any program, so there is no probe that checks every worker cheaply (celery's own
 * `celery inspect ping` starts Python and asks the broker per check): the readiness gate is
 * minReadySeconds (WORKER_MIN_READY_SECONDS), which the policy pack's worker-readiness-probe accepts.
 */
export function workerDeployment(o: WorkerOptions, s: PodSettings): k8s.types.input.apps.v1.Deployment {
    const main = container("worker", s, { command: ["/bin/sh", "-c", `exec ${o.command}`] });
    return deployment(
        o.app,
        `worker-${o.worker}`,
        o.name,
        o.namespace,
        o.replicas,
        o.revisionHistoryLimit,
        o.releaseId,
        podSpec(s, main, { terminationGracePeriodSeconds: o.drainSeconds + 30 }),
        WORKER_MIN_READY_SECONDS,
    );
}

function deployment(
    app: string,
    component: string,
    name: string,
    namespace: pulumi.Input<string>,
    replicas: number,
    revisionHistoryLimit: number,
    releaseId: string | undefined,
    spec: PodSpec,
    minReadySeconds?: number,
): k8s.types.input.apps.v1.Deployment {
    return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace, labels: objectLabels(app, component), annotations: releaseId ? { "thinlayer.dev/release-id": releaseId } : undefined },
        spec: {
            replicas,
            revisionHistoryLimit,
            ...(minReadySeconds !== undefined ? { minReadySeconds } : {}),
            selector: { matchLabels: selectorLabels(app, component) },
            strategy: ROLLING_UPDATE,
            template: { metadata: { labels: objectLabels(app, component) }, spec },
        },
    };
}

/** ClusterIP Service in front of the web pods. */
export function webService(app: string, name: string, namespace: pulumi.Input<string>): k8s.types.input.core.v1.Service {
    return {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace, labels: objectLabels(app, "web") },
        spec: { type: "ClusterIP", selector: selectorLabels(app, "web"), ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] },
    };
}

/** At most one web pod evicted at a time (a node drain never takes the whole web tier). */
export function webDisruptionBudget(app: string, name: string, namespace: pulumi.Input<string>): k8s.types.input.policy.v1.PodDisruptionBudget {
    return {
        apiVersion: "policy/v1",
        kind: "PodDisruptionBudget",
        metadata: { name, namespace, labels: objectLabels(app, "web") },
        spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(app, "web") } },
    };
}

export interface MigrationOptions {
    app: string;
    name: string;
    namespace: pulumi.Input<string>;
    backoffLimit: number;
    activeDeadlineSeconds: number;
}

/** The migration Job: `python manage.py migrate --noinput` in the app image, never restarted in place. */
export function migrationJob(o: MigrationOptions, s: PodSettings): k8s.types.input.batch.v1.Job {
    const main = container("migrate", s, { command: ["python", "manage.py", "migrate", "--noinput"] });
    return {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: o.name, namespace: o.namespace, labels: objectLabels(o.app, "migrate") },
        spec: {
            backoffLimit: o.backoffLimit,
            activeDeadlineSeconds: o.activeDeadlineSeconds,
            template: { metadata: { labels: objectLabels(o.app, "migrate") }, spec: podSpec(s, main, { restartPolicy: "Never" }) },
        },
    };
}

/** The immutable settings ConfigMap; its name carries the settings hash. */
export function settingsConfigMap(
    app: string,
    name: string,
    namespace: pulumi.Input<string>,
    settings: Record<string, string>,
): k8s.types.input.core.v1.ConfigMap {
    return {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace, labels: objectLabels(app, "settings") },
        immutable: true,
        data: { ...settings },
    };
}
