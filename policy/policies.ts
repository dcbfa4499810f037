/**
 * The thinlayer policies, as the policy engine runs them: each wraps a pure check from checks.ts.
 * Enforcement levels (see README "delivery"): mandatory where a violation breaks rollback or
 * zero-downtime deploys, advisory where there is a real trade-off.
 */
import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
    validateResourceOfType,
} from "@pulumi/policy";
import {
    cpuLimitProblems,
    ecrRepositoryProblems,
    imageDigestProblems,
    jobProblems,
    lifecycleProblems,
    nonRootProblems,
    Props,
    readinessProblems,
    repositoriesWithoutLifecycle,
    resourcesProblems,
    servedDeployments,
    StackResource,
    webRolloutProblems,
    workerReadinessProblems,
} from "./checks";
import { migrationGateMissing, migrationGateProblems, STACK_TYPE } from "./migration-checks";

/** Defaults of the configurable policies (override with a policy pack config file). */
export const DEFAULTS = { minTaggedImages: 10, maxBackoffLimit: 3, maxActiveDeadlineSeconds: 3600 } as const;

const report = (problems: string[], reportViolation: ReportViolation, urn?: string) => problems.forEach((p) => reportViolation(p, urn));

/** One validation per workload kind, so the engine's type filter applies to each. */
function workloadImage<T extends pulumi.CustomResource, A>(cls: { new (name: string, args?: A, opts?: pulumi.CustomResourceOptions): T }) {
    return validateResourceOfType(cls, (_props, args, reportViolation) => report(imageDigestProblems(args.type, args.props as Props), reportViolation));
}

export const workloadImageByDigest: ResourceValidationPolicy = {
    name: "workload-image-by-digest",
    description: "Every workload container runs an image pinned by digest (repo@sha256:…), never a tag.",
    enforcementLevel: "mandatory",
    validateResource: [
        workloadImage(k8s.apps.v1.Deployment),
        workloadImage(k8s.apps.v1.StatefulSet),
        workloadImage(k8s.apps.v1.DaemonSet),
        workloadImage(k8s.batch.v1.Job),
        workloadImage(k8s.batch.v1.CronJob),
        workloadImage(k8s.core.v1.Pod),
    ],
};

export const ecrImmutableTags: ResourceValidationPolicy = {
    name: "ecr-immutable-tags",
    description: "ECR repositories have IMMUTABLE tags.",
    enforcementLevel: "mandatory",
    validateResource: validateResourceOfType(aws.ecr.Repository, (_props, args, reportViolation) =>
        report(ecrRepositoryProblems(args.name, args.props as Props), reportViolation),
    ),
};

export const ecrLifecycleKeepsReleases: ResourceValidationPolicy = {
    name: "ecr-lifecycle-keeps-releases",
    description: "ECR lifecycle rules never expire tagged images by age, and keep at least minTaggedImages per rule.",
    enforcementLevel: "mandatory",
    configSchema: { properties: { minTaggedImages: { type: "integer", minimum: 1, default: DEFAULTS.minTaggedImages } } },
    validateResource: validateResourceOfType(aws.ecr.LifecyclePolicy, (_props, args, reportViolation) => {
        const min = args.getConfig<{ minTaggedImages?: number }>().minTaggedImages ?? DEFAULTS.minTaggedImages;
        const props = args.props as Props;
        report(lifecycleProblems(typeof props.repository === "string" ? props.repository : args.name, props.policy, min), reportViolation);
    }),
};

export const ecrRepositoryHasLifecycle: StackValidationPolicy = {
    name: "ecr-repository-has-lifecycle",
    description: "Every ECR repository the stack creates has a lifecycle policy (untagged images expire; the rollback window stays).",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const linked = args.resources.map((r) => ({ ...toStackResource(r), parentUrn: r.parent?.urn, dependencyUrns: r.dependencies.map((d) => d.urn) }));
        for (const repo of repositoriesWithoutLifecycle(linked)) {
            reportViolation(
                `ECR repository ${JSON.stringify(repo.props.name ?? repo.name)} has no lifecycle policy; expected one that expires untagged images and keeps the last N tags. Fix: create repositories with the ImageRepository component.`,
                repo.urn,
            );
        }
    },
};

const deploymentPolicy = (
    name: string,
    description: string,
    enforcementLevel: "mandatory" | "advisory",
    check: (p: Props) => string[],
): ResourceValidationPolicy => ({
    name,
    description,
    enforcementLevel,
    validateResource: validateResourceOfType(k8s.apps.v1.Deployment, (_props, args: ResourceValidationArgs, reportViolation) =>
        report(check(args.props as Props), reportViolation),
    ),
});

export const deploymentResources = deploymentPolicy(
    "deployment-requests-limits",
    "Every Deployment container has CPU and memory requests and a memory limit.",
    "mandatory",
    resourcesProblems,
);
export const deploymentNonRoot = deploymentPolicy("deployment-non-root", "Every Deployment container runs as non-root.", "mandatory", nonRootProblems);
export const deploymentCpuLimit = deploymentPolicy("deployment-cpu-limit", "Every Deployment container has a CPU limit.", "advisory", cpuLimitProblems);

/**
 * Readiness probes: mandatory where they gate traffic (Deployments a Service selects). A worker
 * serves no traffic: its readiness only gates the rollout, and a cheap, meaningful probe is not
 * always available (`celery inspect ping` starts a Python process and asks the broker per check),
 * so the advisory worker policy accepts minReadySeconds as the gate instead (workerReadinessProblems).
 */
export const webReadinessProbe: StackValidationPolicy = {
    name: "web-readiness-probe",
    description: "Every container of a Deployment behind a Service has a readiness probe.",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        for (const d of servedDeployments(args.resources.map(toStackResource))) report(readinessProblems(d.props), reportViolation, d.urn);
    },
};

export const workerReadinessProbe: StackValidationPolicy = {
    name: "worker-readiness-probe",
    description:
        "A Deployment no Service selects (a worker) has a readiness gate: a readiness probe on every container, or minReadySeconds long enough for a failing start to show.",
    enforcementLevel: "advisory",
    validateStack: (args, reportViolation) => {
        const resources = args.resources.map(toStackResource);
        const served = new Set(servedDeployments(resources).map((d) => d.urn));
        for (const d of resources.filter((r) => r.type === "kubernetes:apps/v1:Deployment" && !served.has(r.urn))) {
            report(workerReadinessProblems(d.props), reportViolation, d.urn);
        }
    },
};

export const webZeroUnavailable: StackValidationPolicy = {
    name: "web-zero-unavailable",
    description: "Deployments behind a Service roll out with RollingUpdate and maxUnavailable 0.",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        for (const d of servedDeployments(args.resources.map(toStackResource))) report(webRolloutProblems(d.props), reportViolation, d.urn);
    },
};

export const jobBounded: ResourceValidationPolicy = {
    name: "job-bounded",
    description: "Jobs (the migration Job) set backoffLimit and activeDeadlineSeconds within limits.",
    enforcementLevel: "mandatory",
    configSchema: {
        properties: {
            maxBackoffLimit: { type: "integer", minimum: 0, default: DEFAULTS.maxBackoffLimit },
            maxActiveDeadlineSeconds: { type: "integer", minimum: 1, default: DEFAULTS.maxActiveDeadlineSeconds },
        },
    },
    validateResource: validateResourceOfType(k8s.batch.v1.Job, (_props, args, reportViolation) => {
        const c = args.getConfig<{ maxBackoffLimit?: number; maxActiveDeadlineSeconds?: number }>();
        report(
            jobProblems(args.props as Props, {
                maxBackoffLimit: c.maxBackoffLimit ?? DEFAULTS.maxBackoffLimit,
                maxActiveDeadlineSeconds: c.maxActiveDeadlineSeconds ?? DEFAULTS.maxActiveDeadlineSeconds,
            }),
            reportViolation,
        );
    }),
};

/**
 * The migration gate, re-checked from the program's `migrationGate` stack output (the engine gives a
 * stack policy the root Stack resource with the outputs as props, in preview too): mandatory, as a
 * contract migration breaks the release still serving. See policy/migration-checks.ts.
 */
export const migrationGate: StackValidationPolicy = {
    name: "migration-gate",
    description: "Every Django migration a deploy applies is expand (the serving release survives it) or acknowledged in thinlayer:acknowledgedMigrations.",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        for (const r of args.resources.filter((x) => x.type === STACK_TYPE)) report(migrationGateProblems(r.props as Props), reportViolation, r.urn);
    },
};

/** Advisory: a thinlayer stack whose program does not export the verdict cannot be checked by migration-gate. */
export const migrationGateExported: StackValidationPolicy = {
    name: "migration-gate-exported",
    description: "The thinlayer program exports its migration gate verdict (the migrationGate stack output).",
    enforcementLevel: "advisory",
    validateStack: (args, reportViolation) => {
        for (const r of args.resources.filter((x) => x.type === STACK_TYPE && migrationGateMissing(x.props as Props))) {
            reportViolation(
                "the stack exports appHash but no migrationGate output, so the migration-gate policy cannot check the migrations it applies. Fix: export migrationGate from index.ts (checkDeployMigrations(...).gate).",
                r.urn,
            );
        }
    },
};

/** Every policy of the pack, in the order the engine reports them. */
export const policies: Array<ResourceValidationPolicy | StackValidationPolicy> = [
    workloadImageByDigest,
    ecrImmutableTags,
    ecrLifecycleKeepsReleases,
    ecrRepositoryHasLifecycle,
    webReadinessProbe,
    workerReadinessProbe,
    deploymentResources,
    deploymentNonRoot,
    deploymentCpuLimit,
    webZeroUnavailable,
    jobBounded,
    migrationGate,
    migrationGateExported,
];

function toStackResource(r: PolicyResource): StackResource {
    return { type: r.type, name: r.name, urn: r.urn, props: r.props as Props };
}
