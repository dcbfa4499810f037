/**
 * Release: everything one version of the app runs as, in one namespace.
 *
 * - settings: an immutable ConfigMap named `<name>-settings-<settings hash>`; a settings change is a
 *   new ConfigMap, so the pods' env changes with the pod template (a rollout), and a rollback that
 *   restores old settings restores that exact ConfigMap.
 * - secrets: a Secret from Pulumi secret config (encrypted in state). It is auto-named and replaced
 *   on change (`replaceOnChanges`), so a new value gives a new name and the workloads roll out; no
 *   hash of a secret value is ever written anywhere.
 * - migrations: a Job per migrations hash (see `migrationResourceName` for why the hash is in the
 *   Pulumi name and the pod template is ignored after creation). Every Deployment `dependsOn` it, and
 *   the Kubernetes provider awaits the Job: a failed migration stops the update before any
 *   Deployment changes, and the old version keeps serving.
 * - workloads: web (Deployment + Service + PodDisruptionBudget) and one Deployment per worker, images
 *   by digest, RollingUpdate maxUnavailable 0 / maxSurge 1. Rollouts are awaited (no skipAwait).
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import type { WorkerConfig } from "../lib/config";
import { QUANTITY, workerNameRule } from "../lib/rules";
import { check, HASH_RE, intIn } from "./problems";
import * as w from "./workloads";

export interface ReleaseArgs {
    /** Namespace the release lives in. */
    readonly namespace: pulumi.Input<string>;
    /** The app image by digest, `host/repo@sha256:<64 hex>`. */
    readonly image: pulumi.Input<string>;
    /**
     * Migrations content hash (64 hex): names the migration Job. Unset for a rollback pin whose
     * release's migrations hash is unknown. @default - no migration Job
     */
    readonly migrationsHash?: string;
    /** Settings content hash (64 hex): names the settings ConfigMap. */
    readonly settingsHash: string;
    /** Non-secret settings (environment variables). @default {} */
    readonly settings?: Record<string, string>;
    /** Secret settings (environment variables), a Pulumi secret. @default {} */
    readonly secretSettings?: pulumi.Input<Record<string, string>>;
    /** Release id, annotated on the Deployments. @default - no release-id annotation */
    readonly releaseId?: string;
    /** Web replicas. @default 2 */
    readonly webReplicas?: number;
    /** Port gunicorn listens on. @default 8000 */
    readonly webPort?: number;
    /** Path of the readiness and startup probes. @default "/healthz" */
    readonly healthPath?: string;
    /** Host header of the HTTP probes (must be in Django's ALLOWED_HOSTS). @default - none: the kubelet sends the pod IP */
    readonly probeHost?: string;
    /** Worker processes, one Deployment each. @default [] */
    readonly workers?: readonly WorkerConfig[];
    /** Replicas per worker. @default 1 */
    readonly workerReplicas?: number;
    /** CPU request per container. @default "250m" */
    readonly cpuRequest?: string;
    /** Memory request per container. @default "256Mi" */
    readonly memoryRequest?: string;
    /** CPU limit per container. @default "1" */
    readonly cpuLimit?: string;
    /** Memory limit per container. @default "512Mi" */
    readonly memoryLimit?: string;
    /** Old ReplicaSets kept per Deployment. @default 5 */
    readonly revisionHistoryLimit?: number;
    /** Retries of the migration Job. @default 1 */
    readonly migrationBackoffLimit?: number;
    /** Deadline of the migration Job in seconds. @default 600 */
    readonly migrationDeadlineSeconds?: number;
    /** Seconds a stopping pod keeps serving while endpoints drop it (preStop sleep). @default 10 */
    readonly drainSeconds?: number;
    /** UID/GID the containers run as (the app Dockerfile's USER). @default 10001 */
    readonly runAsUser?: number;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Validates plain Release args; one message per problem. `name` is the component name (a DNS label prefix). */
export function validateReleaseArgs(name: string, args: ReleaseArgs): string[] {
    const p: string[] = [];
    check(
        p,
        LABEL.test(name) && name.length <= 30,
        "name",
        name,
        "a DNS-1123 label of at most 30 characters (it prefixes every object name)",
        "rename the Release",
    );
    check(
        p,
        args.migrationsHash === undefined || HASH_RE.test(args.migrationsHash),
        "migrationsHash",
        args.migrationsHash,
        "64 lowercase hex (plan.migrations.hash)",
        "pass the plan's migrations hash",
    );
    check(p, HASH_RE.test(args.settingsHash), "settingsHash", args.settingsHash, "64 lowercase hex (plan.settings.hash)", "pass the plan's settings hash");
    check(p, intIn(args.webReplicas ?? 2, 0, 1000), "webReplicas", args.webReplicas, "an integer from 0 to 1000", "set a replica count");
    check(p, intIn(args.workerReplicas ?? 1, 0, 1000), "workerReplicas", args.workerReplicas, "an integer from 0 to 1000", "set a replica count");
    check(p, intIn(args.webPort ?? 8000, 1, 65535), "webPort", args.webPort, "a port from 1 to 65535", "use the port gunicorn binds");
    check(p, (args.healthPath ?? "/healthz").startsWith("/"), "healthPath", args.healthPath, "an absolute URL path such as /healthz", "start it with /");
    check(
        p,
        intIn(args.revisionHistoryLimit ?? 5, 0, 1000),
        "revisionHistoryLimit",
        args.revisionHistoryLimit,
        "an integer from 0 to 1000",
        "set how many old ReplicaSets to keep",
    );
    check(
        p,
        intIn(args.migrationBackoffLimit ?? 1, 0, 100),
        "migrationBackoffLimit",
        args.migrationBackoffLimit,
        "an integer from 0 to 100",
        "set the Job's retries",
    );
    check(
        p,
        intIn(args.migrationDeadlineSeconds ?? 600, 30, 86400),
        "migrationDeadlineSeconds",
        args.migrationDeadlineSeconds,
        "an integer from 30 to 86400",
        "set the Job's deadline in seconds",
    );
    check(p, intIn(args.drainSeconds ?? 10, 0, 300), "drainSeconds", args.drainSeconds, "an integer from 0 to 300", "set the preStop drain in seconds");
    check(p, intIn(args.runAsUser ?? 10001, 1, 2147483647), "runAsUser", args.runAsUser, "a non-root UID (1 or more)", "use the UID of the image's USER");
    for (const [key, dflt] of [
        ["cpuRequest", "250m"],
        ["memoryRequest", "256Mi"],
        ["cpuLimit", "1"],
        ["memoryLimit", "512Mi"],
    ] as const) {
        check(p, QUANTITY.test(args[key] ?? dflt), key, args[key], QUANTITY.allowed, "use a Kubernetes resource quantity");
    }
    const workerName = workerNameRule(name);
    for (const wk of args.workers ?? []) {
        check(p, workerName.test(wk.name), "workers", wk.name, workerName.allowed, "rename the worker");
        check(p, wk.command.trim() !== "", "workers", `${wk.name}=`, "NAME=COMMAND with a non-empty command", "give the worker its command line");
    }
    for (const k of Object.keys(args.settings ?? {})) {
        check(p, /^[A-Za-z_][A-Za-z0-9_]*$/.test(k), "settings", k, "environment variable names ([A-Za-z_][A-Za-z0-9_]*)", "rename the setting");
    }
    return p;
}

/**
 * The Pulumi name (and Kubernetes name) of the migration Job: keyed on the migrations hash.
 *
 * Why the hash is in the Pulumi resource name, and the pod template is `ignoreChanges`d:
 * - The Job must run in an image that has the new migrations: the app image of the update that
 *   introduced the migrations hash. A new hash is a new resource, created with that update's inputs
 *   (a create never applies ignoreChanges), so it runs `migrate` in exactly that image.
 * - While the hash stays, later app-only (or settings-only) updates change the desired pod template
 *   (new image, new ConfigMap name), but a Job is a record of one run, not a workload: re-running
 *   migrate for an unchanged migration set costs a pod and gains nothing. `ignoreChanges` on
 *   `spec.template` makes the Job's inputs depend on the migrations hash only.
 * - A stable Pulumi name with a changing `metadata.name` would instead be a *replace*, and a replace
 *   keeps the old values of ignored properties: the new Job would run the previous image, which lacks
 *   the new migrations. Keying the resource name avoids that trap.
 * - Rollback pin: the Job is keyed on the pinned release's migrations hash (written by `thinlayer
 *   rollback`), never the checkout's: a checkout with migrations not yet deployed must not create
 *   their Job running the older pinned image (a no-op `migrate` that would mark the hash done, so
 *   the real migrations would never run after the pin is cleared). Migrations are never reversed
 *   (Django does not migrate backwards by itself; keep migrations backward compatible — expand,
 *   then contract — so an older image runs on the newer schema).
 */
export function migrationResourceName(name: string, migrationsHash: string): string {
    return `${name}-migrate-${migrationsHash.slice(0, 12)}`;
}

/** How long Pulumi awaits the migration Job: its deadline plus two minutes for scheduling and the image pull. */
function migrationAwaitTimeout(deadlineSeconds: number): string {
    return `${deadlineSeconds + 120}s`;
}

/** Name of the settings ConfigMap: keyed on the settings hash. */
export function settingsConfigMapName(name: string, settingsHash: string): string {
    return `${name}-settings-${settingsHash.slice(0, 12)}`;
}

export class Release extends pulumi.ComponentResource {
    public readonly configMapName: pulumi.Output<string>;
    /** undefined when the release runs no migration Job. */
    public readonly migrationJobName: string | undefined;
    public readonly webDeploymentName: pulumi.Output<string>;
    public readonly workerDeploymentNames: pulumi.Output<string>[];
    public readonly serviceName: pulumi.Output<string>;

    constructor(name: string, args: ReleaseArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:kubernetes:Release", name, {}, opts);
        const problems = validateReleaseArgs(name, args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);

        const app = name;
        const ns = args.namespace;
        const drainSeconds = args.drainSeconds ?? 10;
        const revisionHistoryLimit = args.revisionHistoryLimit ?? 5;

        const settings = new k8s.core.v1.ConfigMap(
            `${name}-settings`,
            w.settingsConfigMap(app, settingsConfigMapName(name, args.settingsHash), ns, args.settings ?? {}),
            { parent: this },
        );
        const secret = new k8s.core.v1.Secret(
            `${name}-secrets`,
            {
                metadata: { namespace: ns, labels: w.objectLabels(app, "secrets") },
                type: "Opaque",
                stringData: pulumi.secret(pulumi.output(args.secretSettings ?? {})),
            },
            { parent: this, replaceOnChanges: ["stringData"] },
        );

        const pod: w.PodSettings = {
            image: args.image,
            configMapName: settings.metadata.name,
            secretName: secret.metadata.name,
            cpuRequest: args.cpuRequest ?? "250m",
            memoryRequest: args.memoryRequest ?? "256Mi",
            cpuLimit: args.cpuLimit ?? "1",
            memoryLimit: args.memoryLimit ?? "512Mi",
            runAsUser: args.runAsUser ?? 10001,
        };

        this.migrationJobName = args.migrationsHash === undefined ? undefined : migrationResourceName(name, args.migrationsHash);
        const job =
            this.migrationJobName === undefined
                ? undefined
                : new k8s.batch.v1.Job(
                      this.migrationJobName,
                      w.migrationJob(
                          {
                              app,
                              name: this.migrationJobName,
                              namespace: ns,
                              backoffLimit: args.migrationBackoffLimit ?? 1,
                              activeDeadlineSeconds: args.migrationDeadlineSeconds ?? 600,
                          },
                          pod,
                      ),
                      {
                          parent: this,
                          ignoreChanges: ["spec.template"],
                          // The provider awaits a Job for 10 minutes by default; a migration may run up to its
                          // deadline, and `pulumi up` must not give up on it while it still runs in the cluster.
                          customTimeouts: {
                              create: migrationAwaitTimeout(args.migrationDeadlineSeconds ?? 600),
                              update: migrationAwaitTimeout(args.migrationDeadlineSeconds ?? 600),
                          },
                      },
                  );
        const afterMigrations = job === undefined ? [] : [job];

        const web = new k8s.apps.v1.Deployment(
            `${name}-web`,
            w.webDeployment(
                {
                    app,
                    name: `${name}-web`,
                    namespace: ns,
                    replicas: args.webReplicas ?? 2,
                    port: args.webPort ?? 8000,
                    healthPath: args.healthPath ?? "/healthz",
                    probeHost: args.probeHost,
                    drainSeconds,
                    revisionHistoryLimit,
                    releaseId: args.releaseId,
                },
                pod,
            ),
            { parent: this, dependsOn: afterMigrations },
        );
        const service = new k8s.core.v1.Service(`${name}-web-service`, w.webService(app, `${name}-web`, ns), { parent: this });
        new k8s.policy.v1.PodDisruptionBudget(`${name}-web-pdb`, w.webDisruptionBudget(app, `${name}-web`, ns), { parent: this });

        const workers = (args.workers ?? []).map(
            (wk) =>
                new k8s.apps.v1.Deployment(
                    `${name}-worker-${wk.name}`,
                    w.workerDeployment(
                        {
                            app,
                            worker: wk.name,
                            name: `${name}-worker-${wk.name}`,
                            namespace: ns,
                            command: wk.command,
                            replicas: args.workerReplicas ?? 1,
                            drainSeconds,
                            revisionHistoryLimit,
                            releaseId: args.releaseId,
                        },
                        pod,
                    ),
                    { parent: this, dependsOn: afterMigrations },
                ),
        );

        this.configMapName = settings.metadata.name;
        this.webDeploymentName = web.metadata.name;
        this.workerDeploymentNames = workers.map((d) => d.metadata.name);
        this.serviceName = service.metadata.name;
        this.registerOutputs({
            configMapName: this.configMapName,
            migrationJobName: this.migrationJobName,
            webDeploymentName: this.webDeploymentName,
            workerDeploymentNames: this.workerDeploymentNames,
            serviceName: this.serviceName,
        });
    }
}

/**
 * Host header for the HTTP probes from Django's DJANGO_ALLOWED_HOSTS (comma-separated): the kubelet
 * would otherwise send the pod IP, which Django rejects with 400. "*" needs none; ".example.com"
 * (any subdomain) becomes "probe.example.com".
 */
export function djangoProbeHost(allowedHosts: string | undefined): string | undefined {
    const first = (allowedHosts ?? "")
        .split(",")
        .map((h) => h.trim())
        .find((h) => h !== "");
    if (first === undefined || first === "*") return undefined;
    return first.startsWith(".") ? `probe${first}` : first;
}
