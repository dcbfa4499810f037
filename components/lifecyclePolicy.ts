/**
 * The ECR lifecycle policy of a thinlayer repository, as a pure function (awsx's
 * `buildLifecyclePolicy` pattern) so tests assert on the exact document.
 *
 * Rules, in priority order:
 *   1. untagged images expire after `untaggedDays` (failed pushes, superseded manifests);
 *   2. per tag prefix, keep only the newest `count` tagged images (app-… = the rollback window,
 *      deps-… = base images).
 * Tags outside every prefix are never expired: nothing a human pushed by hand disappears.
 * Base layers an app image still references are not lost when a deps-… manifest expires: ECR
 * keeps a layer while any remaining image references it.
 */

/** One "keep the newest N" rule. */
export interface KeepRule {
    /** Tag prefix the rule applies to, e.g. "app-". */
    readonly tagPrefix: string;
    /** Tagged images with that prefix to keep (the newest by push time). */
    readonly count: number;
}

export interface LifecyclePolicyOptions {
    /** Days after which untagged images expire. @default 1 */
    readonly untaggedDays?: number;
    /** Keep-the-newest rules, one per tag prefix. */
    readonly keep: readonly KeepRule[];
}

/** The policy document shape ECR accepts (`aws.ecr.LifecyclePolicy` `policy`). */
export interface LifecyclePolicyDocument {
    rules: {
        rulePriority: number;
        description: string;
        selection: {
            tagStatus: "untagged" | "tagged";
            tagPrefixList?: string[];
            countType: "sinceImagePushed" | "imageCountMoreThan";
            countUnit?: "days";
            countNumber: number;
        };
        action: { type: "expire" };
    }[];
}

/** Builds the lifecycle policy document (pure). */
export function buildLifecyclePolicy(opts: LifecyclePolicyOptions): LifecyclePolicyDocument {
    const untaggedDays = opts.untaggedDays ?? 1;
    const rules: LifecyclePolicyDocument["rules"] = [
        {
            rulePriority: 1,
            description: `Expire untagged images after ${untaggedDays} day(s)`,
            selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: untaggedDays },
            action: { type: "expire" },
        },
    ];
    opts.keep.forEach((rule, i) => {
        rules.push({
            rulePriority: i + 2,
            description: `Keep the newest ${rule.count} images tagged ${rule.tagPrefix}*`,
            selection: { tagStatus: "tagged", tagPrefixList: [rule.tagPrefix], countType: "imageCountMoreThan", countNumber: rule.count },
            action: { type: "expire" },
        });
    });
    return { rules };
}
