/**
 * The thinlayer program: config -> plan (content hashes, read from files; nothing is built while the
 * program runs) -> components -> stack outputs. Wiring only; the logic lives in components/ and lib/.
 *
 * Exported as an async function: Pulumi awaits it and its result becomes the stack outputs. Resource
 * names depend on the plan (the migration Job is keyed on the migrations hash), so the plan must be
 * a plain value before any resource is declared.
 */
import * as pulumi from "@pulumi/pulumi";
import { asUserError, loadConfig } from "./config";
import { computePlan } from "./lib/plan";
import { BASELINE_OUTPUTS, checkDeployMigrations, type PreviousOutputs } from "./lib/migrations";
import { RELEASE_NAME } from "./lib/rules";
import { PROJECT_ROOT } from "./lib/root";
import { AppImage, BaseImage, djangoProbeHost, ImageRepository, isEcrRegistry, KubernetesTarget, Release, resolveReleasePin } from "./components";

export = async () => {
    const cfg = loadConfig(PROJECT_ROOT);
    const plan = await asUserError(computePlan(cfg));
    const pinned = cfg.releaseImage !== "";
    // The migration gate compares the checkout's migrations with what this stack deployed last: its
    // own outputs, read back through a StackReference to itself (empty on a first deploy). It throws
    // in preview and up, before any resource is declared, for a contract/unknown migration that
    // thinlayer:acknowledgedMigrations does not list.
    const deployed = new pulumi.StackReference("deployed-release", { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` });
    const previous: PreviousOutputs = Object.fromEntries(await Promise.all(BASELINE_OUTPUTS.map(async (k) => [k, await deployed.getOutputValue(k)] as const)));
    const migrations = await asUserError(checkDeployMigrations({ cfg, migrations: plan.migrations, previous, pinned }));
    for (const note of migrations.notes) void pulumi.log.info(note);
    if (!cfg.lifecycleStacks.includes(pulumi.getStack())) {
        void pulumi.log.warn(
            `stack ${pulumi.getStack()} is not in thinlayer:lifecycleStacks (${cfg.lifecycleStacks.join(", ")}): the ECR lifecycle does not keep the images it deploys beyond the shared window. Fix: add it to lifecycleStacks in the stack that owns the repositories.`,
        );
    }

    // Repositories: ECR resources (owned, or looked up by name), or plain names on another registry.
    const repositoryUrl = (role: "base" | "app", repositoryName: string, tagPrefix: string, keep: number, scanOnPush: boolean) =>
        isEcrRegistry(cfg.registry)
            ? new ImageRepository(role, {
                  repositoryName,
                  mode: cfg.repositoryMode,
                  tagPrefix,
                  keepTaggedImages: keep,
                  lifecycleStacks: cfg.lifecycleStacks,
                  scanOnPush,
              }).repositoryUrl
            : pulumi.output(`${cfg.registry}/${repositoryName}`);
    // Scan on push where the OS packages are: the base. The app image only adds Python source on
    // top, so scanning it would repeat the base's findings on every deploy.
    const baseRepositoryUrl = repositoryUrl("base", cfg.baseRepository, "deps-", cfg.keepBaseImages, true);
    const appRepositoryUrl = repositoryUrl("app", cfg.appRepository, "app-", cfg.keepAppImages, false);

    let base: BaseImage | undefined;
    let app: AppImage | undefined;
    let appImageRef: pulumi.Output<string>;
    if (pinned) {
        // Rollback pin: no build resources at all; deploy the pinned image, resolved to a digest.
        appImageRef = resolveReleasePin(cfg.releaseImage, appRepositoryUrl);
        void pulumi.log.info(`rollback pin ${cfg.releaseImage}: deploying it, building nothing (clear it with \`thinlayer rollback --clear\`)`);
    } else {
        base = new BaseImage("base", {
            projectDir: cfg.projectDir,
            image: plan.base,
            repositoryUrl: baseRepositoryUrl,
            platform: plan.platform,
            buildArgs: cfg.buildArgs,
            builder: cfg.builder,
            keepTag: `${pulumi.getStack()}-${plan.base.tag}`,
        });
        app = new AppImage("app", {
            projectDir: cfg.projectDir,
            image: plan.app,
            repositoryUrl: appRepositoryUrl,
            platform: plan.platform,
            baseRef: base.imageRef,
            baseHash: plan.base.hash,
            builder: cfg.builder,
            keepTag: `${pulumi.getStack()}-${plan.app.tag}`,
        });
        appImageRef = app.imageRef;
    }

    // The migration Job runs in the deployed image, so it is keyed on that image's migrations: the
    // checkout's when building, the pinned release's when pinned (none if unknown). See Release.
    const jobMigrationsHash = !pinned ? plan.migrations.hash : cfg.releaseMigrationsHash === "" ? undefined : cfg.releaseMigrationsHash;

    const target = new KubernetesTarget("cluster", { namespace: cfg.namespace, kubeconfig: cfg.kubeconfig, context: cfg.kubeContext });
    const release = new Release(
        RELEASE_NAME,
        {
            namespace: target.namespace,
            image: appImageRef,
            migrationsHash: jobMigrationsHash,
            settingsHash: plan.settings.hash,
            settings: plan.settings.values,
            secretSettings: cfg.secretSettings,
            releaseId: pinned ? undefined : plan.releaseId,
            webReplicas: cfg.webReplicas,
            webPort: cfg.webPort,
            healthPath: cfg.healthPath,
            probeHost: djangoProbeHost(cfg.settings.DJANGO_ALLOWED_HOSTS),
            workers: cfg.workers,
            workerReplicas: cfg.workerReplicas,
            cpuRequest: cfg.cpuRequest,
            memoryRequest: cfg.memoryRequest,
            cpuLimit: cfg.cpuLimit,
            memoryLimit: cfg.memoryLimit,
            revisionHistoryLimit: cfg.revisionHistoryLimit,
            migrationBackoffLimit: cfg.migrationBackoffLimit,
            migrationDeadlineSeconds: cfg.migrationDeadlineSeconds,
        },
        { providers: [target.provider] },
    );

    return {
        pinned,
        appImageRef,
        baseImageRef: base?.imageRef,
        baseHash: plan.base.hash,
        appHash: plan.app.hash,
        baseTag: plan.base.tag,
        appTag: plan.app.tag,
        migrationsHash: jobMigrationsHash,
        // Migration ids the database has after this update: the next preview's gate baseline and the rollback guard's.
        migrations: migrations.applied,
        // The gate's verdict, re-checked by the policy pack's migration-gate policy.
        migrationGate: migrations.gate,
        settingsHash: plan.settings.hash,
        releaseId: pinned ? undefined : plan.releaseId,
        settings: plan.settings.values,
        builtOrReused: { base: base?.action ?? "pinned", app: app?.action ?? "pinned" },
        namespace: target.namespace,
        migrationJob: release.migrationJobName,
    };
};
