// The execution providers onnxruntime can be asked for, by name: shared by the provider selection and
// the rule that orders them for 'auto', so neither imports the other for it.
export const PROVIDER_NAMES = ['cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
