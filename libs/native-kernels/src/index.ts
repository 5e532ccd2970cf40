export { ADDON_PATH, DEFAULT_BLAS_CANDIDATES, loadAddon, type KernelsAddon } from './addon';
export { NATIVE_BACKEND, nativeThreadsFromEnv, registerNativeBackend, type NativeInfo, type NativeOptions } from './backend';
