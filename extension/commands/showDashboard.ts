// "FedKSeed: Show Dashboard".
import type { DashboardPanelManager } from '../views/dashboardPanel';

export function showDashboard(dashboard: DashboardPanelManager): void {
  dashboard.show();
}
