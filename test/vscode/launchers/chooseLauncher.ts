// Picks how to run the suite: FEDKSEED_VSCODE_LAUNCHER=electron|code-server decides; otherwise the
// desktop build is used only where its update server answers and a display exists, else code-server.
import { runWithCodeServer } from './codeServerLauncher';
import { runWithElectron } from './electronLauncher';
import type { SuiteLauncher } from './launch';

export type LauncherName = 'code-server' | 'electron';

async function updateServerReachable(): Promise<boolean> {
  try {
    const response = await fetch('https://update.code.visualstudio.com/api/releases/stable', { signal: AbortSignal.timeout(3000) });
    return response.ok;
  } catch {
    return false;
  }
}

export async function chooseLauncher(env: NodeJS.ProcessEnv = process.env): Promise<{ name: LauncherName; launch: SuiteLauncher }> {
  const requested = env.FEDKSEED_VSCODE_LAUNCHER;
  if (requested === 'electron') return { name: 'electron', launch: runWithElectron };
  if (requested === 'code-server') return { name: 'code-server', launch: runWithCodeServer };
  if (requested) throw new Error(`FEDKSEED_VSCODE_LAUNCHER must be "electron" or "code-server", not "${requested}"`);
  const hasDisplay = Boolean(env.DISPLAY || env.WAYLAND_DISPLAY) || process.platform !== 'linux';
  if (hasDisplay && (await updateServerReachable())) return { name: 'electron', launch: runWithElectron };
  return { name: 'code-server', launch: runWithCodeServer };
}
