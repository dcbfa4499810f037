/**
 * thinlayer components: ECR repositories, content-hashed images, the Kubernetes release.
 * Type tokens (`thinlayer:<module>:<Type>`) and child names are a public contract.
 */
export * from "./lifecyclePolicy";
export * from "./imageRepository";
export * from "./ensureCommand";
export * from "./images";
export * from "./workloads";
export * from "./release";
export * from "./cluster";
export * from "./releasePin";
