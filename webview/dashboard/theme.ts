// Chart colours from the editor's theme (VS Code sets --vscode-charts-* on every webview), read again
// when the theme changes (VS Code updates the body's class).
export interface ChartTheme {
  foreground: string;
  grid: string;
  blue: string;
  orange: string;
  green: string;
  purple: string;
  red: string;
  font: string;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export function readTheme(): ChartTheme {
  return {
    foreground: cssVar('--vscode-charts-foreground', cssVar('--vscode-foreground', '#cccccc')),
    grid: cssVar('--vscode-charts-lines', 'rgba(128,128,128,0.35)'),
    blue: cssVar('--vscode-charts-blue', '#3794ff'),
    orange: cssVar('--vscode-charts-orange', '#d18616'),
    green: cssVar('--vscode-charts-green', '#89d185'),
    purple: cssVar('--vscode-charts-purple', '#b180d7'),
    red: cssVar('--vscode-charts-red', '#f14c4c'),
    font: cssVar('--vscode-font-family', 'sans-serif'),
  };
}

/** The same colour with an alpha, for area fills. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (!hex) return color;
  const n = parseInt(hex[1]!, 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
