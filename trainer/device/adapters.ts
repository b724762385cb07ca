// Which WebGPU adapter onnxruntime's WebGPU provider (Dawn) will run on, and whether it is a software
// rasteriser. Node has no WebGPU API and neither onnxruntime nor Dawn logs the adapter it takes, so the
// adapters are surveyed from the platform's own sources:
//
// * Linux (Dawn uses Vulkan): `vulkaninfo --summary` when installed (Debian: vulkan-tools) lists every
//   Vulkan device with its deviceType (DISCRETE_GPU, INTEGRATED_GPU, VIRTUAL_GPU, CPU) and name. Without it,
//   the Vulkan driver manifests (ICD .json files, in the loader's search order or VK_DRIVER_FILES /
//   VK_ICD_FILENAMES) are matched against the GPUs the kernel exposes (/sys/class/drm/renderD*, /dev/nvidia*):
//   Mesa's lavapipe (libvulkan_lvp) and SwiftShader are software devices, a hardware driver counts only when
//   its GPU is present (Mesa installs the radeon/intel manifests everywhere).
// * Windows (D3D12): Win32_VideoController names; "Microsoft Basic Render Driver"/"Basic Display Adapter" is
//   WARP, a software rasteriser.
// * macOS (Metal): every Metal device is a GPU.
//
// Dawn, asked for a high-performance adapter, takes a discrete GPU first, then an integrated one, then a
// virtual one, and a CPU (software) adapter last; chooseWebGpuAdapter applies that order.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

export type AdapterKind = 'discrete' | 'integrated' | 'virtual' | 'cpu' | 'unknown';

export interface WebGpuAdapter {
  readonly name: string;
  readonly kind: AdapterKind;
  /** Driver name where known (e.g. 'llvmpipe', 'NVIDIA', 'radv'). */
  readonly driver?: string;
  /** A rasteriser running on the CPU (lavapipe/llvmpipe, SwiftShader, WARP): correct, never fast. */
  readonly software: boolean;
}

export interface WebGpuSurvey {
  /** Where the list came from; 'unknown' means no source could be read, so nothing is ruled out. */
  readonly source: 'vulkaninfo' | 'vulkan-drivers' | 'windows' | 'macos' | 'unknown';
  readonly adapters: readonly WebGpuAdapter[];
  /** Why the list is empty or partial (e.g. no Vulkan loader). */
  readonly note?: string;
}

export interface AdapterChoice {
  readonly chosen: WebGpuAdapter | null;
  readonly passedOver: readonly { readonly adapter: WebGpuAdapter; readonly reason: string }[];
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|microsoft basic render|basic display adapter|\bwarp\b/i;

export function isSoftwareName(name: string): boolean {
  return SOFTWARE_NAMES.test(name);
}

const RANK: Record<AdapterKind, number> = { discrete: 0, integrated: 1, virtual: 2, unknown: 3, cpu: 4 };

/** The adapter Dawn takes for a high-performance request, and why each other one is not it. */
export function chooseWebGpuAdapter(survey: WebGpuSurvey): AdapterChoice {
  const rank = (a: WebGpuAdapter): number => (a.software ? RANK.cpu : RANK[a.kind]);
  const sorted = [...survey.adapters].sort((a, b) => rank(a) - rank(b));
  const chosen = sorted[0] ?? null;
  const passedOver = sorted.slice(1).map((adapter) => ({
    adapter,
    reason: adapter.software
      ? `software rasteriser on the CPU (${adapter.kind === 'cpu' ? 'a CPU-type device' : 'by its name'}): taken only when no GPU exists`
      : `Dawn prefers ${chosen?.kind} GPU ${chosen?.name} for a high-performance request`,
  }));
  return { chosen, passedOver };
}

/** One line: "NVIDIA H200 (discrete); passed over: llvmpipe (…) — software rasteriser …". */
export function describeAdapterChoice(choice: AdapterChoice): string {
  if (!choice.chosen) return 'no WebGPU adapter';
  const c = choice.chosen;
  const head = `${c.name} (${c.software ? 'software' : c.kind}${c.driver ? `, driver ${c.driver}` : ''})`;
  if (choice.passedOver.length === 0) return head;
  return `${head}; passed over: ${choice.passedOver.map((p) => `${p.adapter.name} — ${p.reason}`).join('; ')}`;
}

const VULKAN_TYPES: Record<string, AdapterKind> = {
  PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: 'discrete',
  PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: 'integrated',
  PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: 'virtual',
  PHYSICAL_DEVICE_TYPE_CPU: 'cpu',
  PHYSICAL_DEVICE_TYPE_OTHER: 'unknown',
};

/** The "Devices:" section of `vulkaninfo --summary`. */
export function parseVulkanSummary(text: string): WebGpuAdapter[] {
  const devices: WebGpuAdapter[] = [];
  const section = text.split(/^Devices:\s*$/m)[1] ?? '';
  for (const block of section.split(/^GPU\d+:\s*$/m).slice(1)) {
    const field = (key: string): string | undefined => new RegExp(`^\\s*${key}\\s*=\\s*(.+?)\\s*$`, 'm').exec(block)?.[1];
    const name = field('deviceName');
    if (!name) continue;
    const kind = VULKAN_TYPES[field('deviceType') ?? ''] ?? 'unknown';
    const driver = field('driverName');
    devices.push({ name, kind, driver, software: kind === 'cpu' || isSoftwareName(name) || isSoftwareName(driver ?? '') });
  }
  return devices;
}

export interface IcdDriver {
  readonly manifest: string;
  readonly library: string;
}

const PCI_VENDORS: Record<string, { name: string; libraries: RegExp }> = {
  '0x10de': { name: 'NVIDIA', libraries: /nvidia/i },
  '0x1002': { name: 'AMD', libraries: /radeon|amdvlk|amd/i },
  '0x8086': { name: 'Intel', libraries: /intel/i },
  '0x1af4': { name: 'virtio', libraries: /virtio/i },
  '0x5143': { name: 'Qualcomm', libraries: /freedreno/i },
};

function icdDirectories(env: NodeJS.ProcessEnv): string[] {
  const dataHome = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  const configHome = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  const dataDirs = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const configDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':');
  return [
    join(configHome, 'vulkan/icd.d'),
    ...configDirs.map((d) => join(d, 'vulkan/icd.d')),
    '/etc/vulkan/icd.d',
    join(dataHome, 'vulkan/icd.d'),
    ...dataDirs.map((d) => join(d, 'vulkan/icd.d')),
  ];
}

function readIcd(manifest: string): IcdDriver | null {
  try {
    // Another program's file: nothing in it is taken for more than JSON says it is.
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: unknown } } | null;
    const library = parsed?.ICD?.library_path;
    return typeof library === 'string' && library !== '' ? { manifest, library } : null;
  } catch {
    return null;
  }
}

function listIcds(env: NodeJS.ProcessEnv): IcdDriver[] {
  const explicit = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  const files: string[] = [];
  const addDir = (dir: string): void => {
    try {
      for (const f of readdirSync(dir)) if (f.endsWith('.json')) files.push(join(dir, f));
    } catch {
      // absent directory
    }
  };
  if (explicit) {
    for (const entry of explicit.split(':').filter(Boolean)) {
      if (entry.endsWith('.json')) files.push(entry);
      else addDir(entry);
    }
  } else {
    for (const dir of icdDirectories(env)) addDir(dir);
  }
  return files.map(readIcd).filter((d): d is IcdDriver => d !== null);
}

function hasVulkanLoader(env: NodeJS.ProcessEnv): boolean {
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** The GPUs the kernel exposes: PCI vendor ids of DRM render nodes, and NVIDIA's own device nodes. */
function linuxGpuVendors(): string[] {
  const vendors: string[] = [];
  try {
    for (const node of readdirSync('/sys/class/drm')) {
      if (!/^renderD\d+$/.test(node)) continue;
      try {
        vendors.push(
          readFileSync(join('/sys/class/drm', node, 'device/vendor'), 'utf8')
            .trim()
            .toLowerCase(),
        );
      } catch {
        // a render node without a PCI device (e.g. vgem)
      }
    }
  } catch {
    // no DRM at all
  }
  if (existsSync('/dev/nvidia0') && !vendors.includes('0x10de')) vendors.push('0x10de');
  return vendors;
}

/** Adapters from the Vulkan driver manifests and the GPUs present (no vulkaninfo needed). */
export function surveyVulkanDrivers(icds: readonly IcdDriver[], gpuVendors: readonly string[], loader: boolean): WebGpuSurvey {
  if (!loader) return { source: 'vulkan-drivers', adapters: [], note: 'the Vulkan loader libvulkan.so.1 is not installed' };
  const adapters: WebGpuAdapter[] = [];
  for (const icd of icds) {
    const lib = basename(icd.library);
    if (/lvp/i.test(lib)) adapters.push({ name: 'llvmpipe (Mesa lavapipe)', kind: 'cpu', driver: 'llvmpipe', software: true });
    else if (/swiftshader/i.test(lib)) adapters.push({ name: 'SwiftShader', kind: 'cpu', driver: 'SwiftShader', software: true });
  }
  for (const vendor of new Set(gpuVendors)) {
    const known = PCI_VENDORS[vendor];
    if (!known) continue;
    const driver = icds.find((icd) => known.libraries.test(basename(icd.library)) || known.libraries.test(basename(icd.manifest)));
    if (!driver) continue;
    adapters.push({
      name: `${known.name} GPU (PCI vendor ${vendor})`,
      kind: vendor === '0x1af4' ? 'virtual' : 'unknown',
      driver: basename(driver.library),
      software: false,
    });
  }
  return { source: 'vulkan-drivers', adapters, note: adapters.length === 0 ? 'no Vulkan driver for a GPU or a software device is installed' : undefined };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): string | null {
  try {
    return execFileSync(command, args, { env, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** The WebGPU adapters of this machine (see the file comment for the sources). */
export function surveyWebGpuAdapters(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): WebGpuSurvey {
  if (platform === 'darwin') return { source: 'macos', adapters: [{ name: 'Metal default device', kind: 'unknown', software: false }] };
  if (platform === 'win32') {
    const out = run('powershell', ['-NoProfile', '-Command', 'Get-CimInstance Win32_VideoController | ForEach-Object { $_.Name }'], env);
    if (out === null) return { source: 'unknown', adapters: [], note: 'the video controllers could not be listed' };
    const adapters = out
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean)
      .map((name): WebGpuAdapter => ({ name, kind: isSoftwareName(name) ? 'cpu' : 'unknown', software: isSoftwareName(name) }));
    // WARP is available on every Windows machine, listed or not.
    if (!adapters.some((a) => a.software)) adapters.push({ name: 'Microsoft Basic Render Driver (WARP)', kind: 'cpu', software: true });
    return { source: 'windows', adapters };
  }
  if (platform !== 'linux') return { source: 'unknown', adapters: [] };
  if (!hasVulkanLoader(env)) return surveyVulkanDrivers([], [], false);
  const summary = run('vulkaninfo', ['--summary'], { XDG_RUNTIME_DIR: '/tmp', ...env });
  if (summary !== null) {
    const adapters = parseVulkanSummary(summary);
    if (adapters.length > 0) return { source: 'vulkaninfo', adapters };
  }
  return surveyVulkanDrivers(listIcds(env), linuxGpuVendors(), true);
}
