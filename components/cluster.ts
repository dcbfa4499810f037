/**
 * KubernetesTarget: the Kubernetes provider from config and the namespace a release lives in.
 *
 * The kubeconfig is a Pulumi secret (encrypted in state) or absent (the ambient kubeconfig,
 * optionally one context of it). Pass `provider` to every Kubernetes resource, or give the Release
 * `providers: [target.provider]`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { DNS_LABEL } from "../lib/rules";
import { check } from "./problems";

export interface KubernetesTargetArgs {
    /** Namespace to create. */
    readonly namespace: string;
    /** kubeconfig contents (a secret). @default - the ambient kubeconfig ($KUBECONFIG, else ~/.kube/config) */
    readonly kubeconfig?: pulumi.Input<string>;
    /** kubeconfig context ("" is the same as unset). @default - the kubeconfig's current context */
    readonly context?: string;
}

/** Validates plain args; one message per problem. */
export function validateKubernetesTargetArgs(args: KubernetesTargetArgs): string[] {
    const p: string[] = [];
    check(p, DNS_LABEL.test(args.namespace), "namespace", args.namespace, DNS_LABEL.allowed, "rename the namespace");
    check(
        p,
        args.context === undefined || !/\s/.test(args.context),
        "context",
        args.context,
        "a kubeconfig context name without whitespace",
        "use a name from `kubectl config get-contexts`",
    );
    return p;
}

export class KubernetesTarget extends pulumi.ComponentResource {
    public readonly provider: k8s.Provider;
    public readonly namespace: pulumi.Output<string>;

    constructor(name: string, args: KubernetesTargetArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("thinlayer:kubernetes:KubernetesTarget", name, {}, opts);
        const problems = validateKubernetesTargetArgs(args);
        if (problems.length) throw new pulumi.ResourceError(problems.join("\n"), this);
        this.provider = new k8s.Provider(
            `${name}-provider`,
            {
                kubeconfig: args.kubeconfig,
                context: args.context === "" ? undefined : args.context,
                namespace: args.namespace,
            },
            { parent: this },
        );
        const ns = new k8s.core.v1.Namespace(
            `${name}-namespace`,
            {
                metadata: { name: args.namespace, labels: { "app.kubernetes.io/managed-by": "thinlayer" } },
            },
            { parent: this, provider: this.provider },
        );
        this.namespace = ns.metadata.name;
        this.registerOutputs({ namespace: this.namespace });
    }
}
