/**
 * The checks behind the thinlayer policy pack, as pure functions over plain resource properties
 * (what the policy engine passes as `args.props`). Each returns a list of problems, each a
 * sentence naming the object, the bad value, what is required and the fix; an empty list passes.
 * No Pulumi imports here: tests call these directly, and policies.ts wraps them for the engine.
 */
// `repo@sha256:<64 hex>` or `repo:tag@sha256:<64 hex>` (the digest is what the node pulls): the
// program's own rule, so the pack and the program cannot disagree on what "pinned" means.
import { DIGEST_REF } from "../lib/rules";

/** Kubernetes workload types whose pods run app images, and where their pod spec lives. */
export const WORKLOAD_TYPES: Readonly<Record<string, (props: Props) => unknown>> = {
    "kubernetes:apps/v1:Deployment": (p) => at(p, "spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": (p) => at(p, "spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": (p) => at(p, "spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": (p) => at(p, "spec", "template", "spec"),
    "kubernetes:batch/v1:Job": (p) => at(p, "spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": (p) => at(p, "spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": (p) => at(p, "spec"),
};

export type Props = Record<string, unknown>;

const DEPLOYMENT = "kubernetes:apps/v1:Deployment";

interface Container {
    name?: string;
    image?: string;
    readinessProbe?: unknown;
    resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
}
interface PodSpec {
    containers?: Container[];
    initContainers?: Container[];
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
}

/** Every container and init container of a workload runs an image pinned by digest. */
export function imageDigestProblems(type: string, props: Props): string[] {
    const spec = podSpec(type, props);
    if (spec === undefined) return [];
    const what = describe(type, props);
    return allContainers(spec)
        .filter((c) => typeof c.image !== "string" || !DIGEST_REF.test(c.image))
        .map(
            (c) =>
                `${what}: container ${JSON.stringify(c.name ?? "?")} image ${JSON.stringify(c.image ?? null)} is not pinned by digest; ` +
                `expected repo@sha256:<64 hex> (a tag such as :latest can point at different code on each pull and defeats rollback). ` +
                `Fix: use the imageRef output of the image component, never a tag.`,
        );
}

/** Deployments: every container has a readiness probe (rolling updates wait on it). */
export function readinessProblems(props: Props): string[] {
    return containersOf(props).flatMap(({ c, cn }) =>
        c.readinessProbe === undefined || c.readinessProbe === null
            ? [
                  `${cn} has no readinessProbe; required so a rolling update replaces old pods only once new ones are ready (and, behind a Service, sends traffic only to pods that answer). Fix: add a readinessProbe (HTTP on the health path for web; an exec check for workers).`,
              ]
            : [],
    );
}

/**
 * The shortest minReadySeconds that counts as a worker's readiness gate: long enough for a worker
 * that fails at start (an import error, a bad setting, a missing secret) to have crashed.
 */
export const MIN_WORKER_READY_SECONDS = 10;

/**
 * Deployments no Service selects (workers): a readiness gate, so a rolling update replaces an old
 * pod only with one that works. Either every container has a readinessProbe, or the Deployment
 * sets minReadySeconds >= MIN_WORKER_READY_SECONDS (a new pod counts as available only after
 * running that long without a container crash; the gate for a process with no health endpoint).
 */
export function workerReadinessProblems(props: Props): string[] {
    const minReady = at(props, "spec", "minReadySeconds");
    const wait = typeof minReady === "number" ? minReady : 0;
    if (wait >= MIN_WORKER_READY_SECONDS) return [];
    return containersOf(props).flatMap(({ c, cn }) =>
        c.readinessProbe === undefined || c.readinessProbe === null
            ? [
                  `${cn} has no readinessProbe and the Deployment's minReadySeconds is ${wait}; expected a readinessProbe or minReadySeconds >= ${MIN_WORKER_READY_SECONDS}, so a rolling update replaces an old worker only with one that has stayed up. Fix: add an exec readinessProbe that checks the worker, or set spec.minReadySeconds to at least ${MIN_WORKER_READY_SECONDS}.`,
              ]
            : [],
    );
}

/** Deployments: CPU and memory requests and a memory limit on every container. */
export function resourcesProblems(props: Props): string[] {
    return containersOf(props).flatMap(({ c, cn }) => {
        const req = c.resources?.requests ?? {};
        const lim = c.resources?.limits ?? {};
        const missing = [...["cpu", "memory"].filter((k) => !present(req[k])).map((k) => `requests.${k}`), ...(!present(lim.memory) ? ["limits.memory"] : [])];
        return missing.length
            ? [
                  `${cn} lacks resources ${missing.join(", ")}; required so the scheduler reserves capacity and one pod cannot exhaust a node's memory. Fix: set cpuRequest, memoryRequest and memoryLimit in stack config.`,
              ]
            : [];
    });
}

/** Deployments: no container may run as root (container securityContext overrides the pod's). */
export function nonRootProblems(props: Props): string[] {
    const pod = podSpec(DEPLOYMENT, props)?.securityContext;
    return containersOf(props).flatMap(({ c, cn }) => {
        const nonRoot = c.securityContext?.runAsNonRoot ?? pod?.runAsNonRoot;
        const user = c.securityContext?.runAsUser ?? pod?.runAsUser;
        return nonRoot !== true || user === 0
            ? [
                  `${cn} may run as root (runAsNonRoot=${JSON.stringify(nonRoot ?? null)}, runAsUser=${JSON.stringify(user ?? null)}); expected runAsNonRoot: true and a non-zero runAsUser if set. Fix: set securityContext.runAsNonRoot: true on the pod or container.`,
              ]
            : [];
    });
}

/** The containers of a Deployment, each with the name used in messages. */
function containersOf(props: Props): Array<{ c: Container; cn: string }> {
    const what = describe(DEPLOYMENT, props);
    return (podSpec(DEPLOYMENT, props)?.containers ?? []).map((c) => ({ c, cn: `${what}: container ${JSON.stringify(c.name ?? "?")}` }));
}

/** Advisory: a CPU limit per container (throttling trade-off, hence not mandatory). */
export function cpuLimitProblems(props: Props): string[] {
    return containersOf(props)
        .filter(({ c }) => !present(c.resources?.limits?.cpu))
        .map(
            ({ cn }) =>
                `${cn} has no limits.cpu; a runaway process can starve its neighbours. Fix: set cpuLimit in stack config (or accept the risk: this policy is advisory).`,
        );
}

/**
 * A Deployment that serves traffic rolls out without ever dropping below its replica count:
 * RollingUpdate with maxUnavailable 0 (and a surge above 0, else the rollout cannot progress).
 */
export function webRolloutProblems(props: Props): string[] {
    const what = describe(DEPLOYMENT, props);
    const strategy = at(props, "spec", "strategy") as { type?: string; rollingUpdate?: { maxUnavailable?: unknown; maxSurge?: unknown } } | undefined;
    const type = strategy?.type ?? "RollingUpdate";
    if (type !== "RollingUpdate") {
        return [
            `${what}: serves traffic but uses strategy ${JSON.stringify(type)}; expected RollingUpdate with maxUnavailable 0, so no request meets zero ready pods. Fix: use RollingUpdate.`,
        ];
    }
    const mu = strategy?.rollingUpdate?.maxUnavailable;
    const ms = strategy?.rollingUpdate?.maxSurge;
    const out: string[] = [];
    if (!isZero(mu)) {
        out.push(
            `${what}: serves traffic with maxUnavailable ${JSON.stringify(mu ?? "25% (Kubernetes default)")}; expected 0, so old pods stop only after new ones are ready. Fix: set strategy.rollingUpdate.maxUnavailable: 0.`,
        );
    }
    if (ms !== undefined && isZero(ms)) {
        out.push(`${what}: maxSurge 0 with maxUnavailable 0 cannot roll out; expected maxSurge >= 1. Fix: set strategy.rollingUpdate.maxSurge: 1 (or 25%).`);
    }
    return out;
}

/** Jobs (the migration Job) are bounded: explicit backoffLimit and activeDeadlineSeconds within limits. */
export function jobProblems(props: Props, limits: { maxBackoffLimit: number; maxActiveDeadlineSeconds: number }): string[] {
    const what = describe("kubernetes:batch/v1:Job", props);
    const backoff = at(props, "spec", "backoffLimit");
    const deadline = at(props, "spec", "activeDeadlineSeconds");
    const out: string[] = [];
    if (!(Number.isInteger(backoff) && (backoff as number) >= 0 && (backoff as number) <= limits.maxBackoffLimit)) {
        out.push(
            `${what}: backoffLimit ${JSON.stringify(backoff ?? "unset (Kubernetes default 6)")}; expected an explicit integer from 0 to ${limits.maxBackoffLimit}, so a failing migration is not retried over and over. Fix: set thinlayer:migrationBackoffLimit.`,
        );
    }
    if (!(Number.isInteger(deadline) && (deadline as number) > 0 && (deadline as number) <= limits.maxActiveDeadlineSeconds)) {
        out.push(
            `${what}: activeDeadlineSeconds ${JSON.stringify(deadline ?? "unset (runs forever)")}; expected an integer from 1 to ${limits.maxActiveDeadlineSeconds}, so a hung migration (e.g. waiting on a lock) fails and the old release keeps serving. Fix: set thinlayer:migrationDeadlineSeconds.`,
        );
    }
    return out;
}

/** ECR repositories: IMMUTABLE tags, so a tag (and the digest a release recorded) never changes. */
export function ecrRepositoryProblems(name: string, props: Props): string[] {
    const m = props.imageTagMutability;
    if (m === "IMMUTABLE") return [];
    return [
        `ECR repository ${JSON.stringify(props.name ?? name)}: imageTagMutability ${JSON.stringify(m ?? "unset (MUTABLE)")}; expected "IMMUTABLE", so a content-hash tag always names the same image. Fix: set imageTagMutability: "IMMUTABLE".`,
    ];
}

interface LifecycleRule {
    rulePriority?: number;
    selection?: { tagStatus?: string; countType?: string; countNumber?: number; tagPrefixList?: string[]; tagPatternList?: string[] };
    action?: { type?: string };
}

/**
 * An ECR lifecycle policy never expires tagged images below `minTagged` per rule, and never by age:
 * every rule that can select tagged images ("tagged" or "any") must be imageCountMoreThan >= minTagged.
 * Untagged images may expire by any rule.
 */
export function lifecycleProblems(repository: string, policy: unknown, minTagged: number): string[] {
    const what = `ECR lifecycle policy of ${JSON.stringify(repository)}`;
    let doc: { rules?: LifecycleRule[] };
    try {
        doc = (typeof policy === "string" ? JSON.parse(policy) : policy) as { rules?: LifecycleRule[] };
    } catch (e) {
        return [
            `${what}: is not valid JSON (${(e as Error).message}); expected an ECR lifecycle policy document. Fix: generate it with the ImageRepository component.`,
        ];
    }
    const out: string[] = [];
    for (const r of doc?.rules ?? []) {
        const s = r.selection ?? {};
        if (s.tagStatus !== "tagged" && s.tagStatus !== "any") continue;
        const rule = `rule ${r.rulePriority ?? "?"} (tagStatus ${s.tagStatus}${s.tagPrefixList ? `, prefixes ${s.tagPrefixList.join(",")}` : ""})`;
        if (s.countType !== "imageCountMoreThan") {
            out.push(
                `${what}: ${rule} expires tagged images by ${s.countType ?? "?"}; expected imageCountMoreThan >= ${minTagged}, since an image a recent release ran must stay, however old. Fix: keep the last N tags instead of expiring by age.`,
            );
        } else if (!(typeof s.countNumber === "number" && s.countNumber >= minTagged)) {
            out.push(
                `${what}: ${rule} keeps only ${JSON.stringify(s.countNumber ?? null)} tagged images; expected at least ${minTagged} (the rollback window). Fix: raise keepAppImages/keepBaseImages.`,
            );
        }
    }
    return out;
}

/** A resource as the stack policy sees it (a subset of PolicyResource). */
export interface StackResource {
    type: string;
    name: string;
    urn: string;
    props: Props;
}

/**
 * Deployments that serve traffic: those whose pod template labels a Service selects.
 * (Namespaces are not compared: they can be unknown in a preview, and our Services select on
 * release-specific labels.)
 */
export function servedDeployments(resources: StackResource[]): StackResource[] {
    const selectors = resources
        .filter((r) => r.type === "kubernetes:core/v1:Service")
        .map((r) => at(r.props, "spec", "selector") as Record<string, string> | undefined)
        .filter((s): s is Record<string, string> => s !== undefined && s !== null && Object.keys(s).length > 0);
    return resources.filter((r) => {
        if (r.type !== DEPLOYMENT) return false;
        const labels = (at(r.props, "spec", "template", "metadata", "labels") ?? {}) as Record<string, string>;
        return selectors.some((sel) => Object.entries(sel).every(([k, v]) => labels[k] === v));
    });
}

/** A stack resource with the links the engine gives a PolicyResource (parent, dependencies). */
export interface LinkedStackResource extends StackResource {
    parentUrn?: string;
    dependencyUrns?: string[];
}

/**
 * ECR repositories that no lifecycle policy covers. A policy covers a repository when its
 * `repository` input is the repository's name, when it depends on the repository, or when both
 * are children of the same component and that component holds exactly one repository.
 */
export function repositoriesWithoutLifecycle(resources: LinkedStackResource[]): StackResource[] {
    const repos = resources.filter((r) => r.type === "aws:ecr/repository:Repository");
    const policies = resources.filter((r) => r.type === "aws:ecr/lifecyclePolicy:LifecyclePolicy");
    const soleRepoOf = (parent: string | undefined) => parent !== undefined && repos.filter((q) => q.parentUrn === parent).length === 1;
    return repos.filter(
        (repo) =>
            !policies.some(
                (p) =>
                    (typeof p.props.repository === "string" && p.props.repository === repo.props.name) ||
                    (p.dependencyUrns ?? []).includes(repo.urn) ||
                    (p.parentUrn === repo.parentUrn && soleRepoOf(repo.parentUrn)),
            ),
    );
}

function podSpec(type: string, props: Props): PodSpec | undefined {
    const get = WORKLOAD_TYPES[type];
    const spec = get?.(props);
    return spec !== undefined && spec !== null && typeof spec === "object" ? (spec as PodSpec) : undefined;
}

function allContainers(spec: PodSpec): Container[] {
    return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

function describe(type: string, props: Props): string {
    const kind = type.split(":").pop() ?? type;
    const md = (props.metadata ?? {}) as { name?: unknown; namespace?: unknown };
    const name = typeof md.name === "string" ? md.name : "(auto-named)";
    return `${kind} ${typeof md.namespace === "string" ? `${md.namespace}/` : ""}${name}`;
}

function at(obj: unknown, ...keys: string[]): unknown {
    let cur: unknown = obj;
    for (const k of keys) {
        if (cur === undefined || cur === null || typeof cur !== "object") return undefined;
        cur = (cur as Record<string, unknown>)[k];
    }
    return cur;
}

function present(v: unknown): boolean {
    return (typeof v === "string" && v !== "") || typeof v === "number";
}

function isZero(v: unknown): boolean {
    return v === 0 || v === "0" || v === "0%";
}
