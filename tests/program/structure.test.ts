/**
 * The program's resource graph as the engine receives it: type tokens and names (a public
 * contract), parents, the options that make the diff behave (ignoreChanges on the migration Job's
 * pod template, replaceOnChanges on the Secret), dependsOn, and the Kubernetes provider in use.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";

void test("uat: tokens, names and parents of every resource", async () => {
    const app = copyExampleApp();
    try {
        const r = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] } });
        const job = String(r.outputs.migrationJob);
        const graph = r.resources.map((x) => `${x.parent ?? "(stack)"} > ${x.type}::${x.name}`).sort();
        assert.deepEqual(
            graph,
            [
                "(stack) > pulumi:pulumi:StackReference::deployed-release",
                "(stack) > thinlayer:ecr:ImageRepository::app",
                "(stack) > thinlayer:ecr:ImageRepository::base",
                "(stack) > thinlayer:image:AppImage::app",
                "(stack) > thinlayer:image:BaseImage::base",
                "(stack) > thinlayer:kubernetes:KubernetesTarget::cluster",
                "(stack) > thinlayer:kubernetes:Release::app",
                "thinlayer:ecr:ImageRepository::app > aws:ecr/lifecyclePolicy:LifecyclePolicy::app-lifecycle",
                "thinlayer:ecr:ImageRepository::app > aws:ecr/repository:Repository::app-repository",
                "thinlayer:ecr:ImageRepository::base > aws:ecr/lifecyclePolicy:LifecyclePolicy::base-lifecycle",
                "thinlayer:ecr:ImageRepository::base > aws:ecr/repository:Repository::base-repository",
                "thinlayer:image:AppImage::app > command:local:Command::app-ensure",
                "thinlayer:image:BaseImage::base > command:local:Command::base-ensure",
                "thinlayer:kubernetes:KubernetesTarget::cluster > kubernetes:core/v1:Namespace::cluster-namespace",
                "thinlayer:kubernetes:KubernetesTarget::cluster > pulumi:providers:kubernetes::cluster-provider",
                "thinlayer:kubernetes:Release::app > kubernetes:apps/v1:Deployment::app-web",
                "thinlayer:kubernetes:Release::app > kubernetes:apps/v1:Deployment::app-worker-celery",
                `thinlayer:kubernetes:Release::app > kubernetes:batch/v1:Job::${job}`,
                "thinlayer:kubernetes:Release::app > kubernetes:core/v1:ConfigMap::app-settings",
                "thinlayer:kubernetes:Release::app > kubernetes:core/v1:Secret::app-secrets",
                "thinlayer:kubernetes:Release::app > kubernetes:core/v1:Service::app-web-service",
                "thinlayer:kubernetes:Release::app > kubernetes:policy/v1:PodDisruptionBudget::app-web-pdb",
            ].sort(),
        );
        assert.match(job, /^app-migrate-[a-f0-9]{12}$/);
        assert.equal(job, `app-migrate-${String(r.outputs.migrationsHash).slice(0, 12)}`);

        const by = (name: string) => r.resources.find((x) => x.name === name)!;
        assert.deepEqual(by(job).ignoreChanges, ["spec.template"]);
        // Pulumi awaits the Job past its deadline (600 s in uat), not the provider's 10-minute default.
        assert.equal((by(job).inputs as any).spec.activeDeadlineSeconds, 600);
        assert.deepEqual(by(job).customTimeouts, { create: "720s", update: "720s" });
        assert.deepEqual(by("app-secrets").replaceOnChanges, ["stringData"]);
        for (const d of ["app-web", "app-worker-celery"]) assert.deepEqual(by(d).dependsOn, [`kubernetes:batch/v1:Job::${job}`]);
        // Every Kubernetes object goes through the configured provider, not the ambient default one.
        for (const x of r.resources.filter((y) => y.custom && y.type.startsWith("kubernetes:"))) {
            assert.match(x.provider ?? "", /[$:]pulumi:providers:kubernetes::cluster-provider::/, `${x.type}::${x.name}`);
        }
        const cm = by("app-settings").inputs as any;
        assert.equal(cm.metadata.name, `app-settings-${String(r.outputs.settingsHash).slice(0, 12)}`);
        assert.equal(cm.immutable, true);
        assert.deepEqual(cm.data, r.outputs.settings);
        const provider = by("cluster-provider").inputs as any;
        assert.equal(provider.context, "uat");
        assert.equal(provider.kubeconfig, undefined, "no kubeconfig configured: the ambient one");
    } finally {
        app.cleanup();
    }
});
