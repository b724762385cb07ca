// What every launcher needs to run an extension-host suite once.
export interface SuiteLaunch {
  /** Bundled `run()` module (dist/test/vscode/<suite>/index.js). */
  suiteEntry: string;
  /** Environment variables for the extension host. */
  env: Record<string, string>;
  /** A packaged extension to install into the fresh VS Code instead of loading the sources. */
  vsix?: string;
}

/** Runs the suite; resolves with the extension host's exit code (0 when every test passed). */
export type SuiteLauncher = (launch: SuiteLaunch) => Promise<number>;
