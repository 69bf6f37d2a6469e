/**
 * Driving VS Code's workbench in the browser the way a user does: keyboard shortcuts, the command palette, the
 * activity bar, tree views and the Problems panel, read back from the DOM (rows carry their accessible labels).
 * Selectors are VS Code's own class names, stable across 1.9x releases.
 */
import type { FrameLocator, Locator, Page } from 'playwright-core';

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = `${QUICK_INPUT} .quick-input-box input`;
const QUICK_INPUT_ROWS = `${QUICK_INPUT} .quick-input-list .monaco-list-row`;

export interface TreeRow {
  label: string;
  description: string;
  /** The row's accessible label: its tooltip when the extension set one. */
  aria: string;
  level: number;
  expanded: boolean | undefined;
}

export async function poll<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Workbench {
  constructor(readonly page: Page) {}

  /** Opens the workbench on a folder and waits until the Sculpt extension is active (its activity bar entry). */
  static async open(page: Page, url: string, folder: string): Promise<Workbench> {
    await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    const wb = new Workbench(page);
    await wb.activityBarItem('Sculpt').waitFor({ timeout: 60_000 });
    return wb;
  }

  activityBarItem(name: string): Locator {
    return this.page.locator(`.activitybar .action-item .action-label[aria-label="${name}"]`).first();
  }

  /**
   * Opens the quick input with `key` and waits for it; a webview or a panel that just took focus may swallow
   * the first press, hence the retries.
   */
  private async openQuickInput(key: string): Promise<void> {
    const box = this.page.locator(QUICK_INPUT_BOX);
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.page.keyboard.press(key);
      try {
        await box.waitFor({ state: 'visible', timeout: 2000 });
        return;
      } catch {
        await this.page.keyboard.press('Escape');
      }
    }
    throw new Error(`the quick input did not open with ${key}`);
  }

  /**
   * Opens the quick input and types `text` into it. A webview that takes focus a moment after a click (a tab just
   * selected) closes the quick input while the text is typed; then the whole thing is done again.
   */
  private async typeInQuickInput(key: string, text: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await this.openQuickInput(key);
      try {
        await this.page.locator(QUICK_INPUT_BOX).fill(text, { timeout: 3000 });
        return;
      } catch (err) {
        if (attempt >= 4) throw err;
        await this.page.keyboard.press('Escape');
      }
    }
  }

  /**
   * Runs a command from the palette: F1, its title, then the row that is that command (the fuzzy filter may list
   * others first, e.g. "Stop Experiment (every run ...)" for "Stop Run").
   */
  async command(title: string): Promise<void> {
    await this.typeInQuickInput('F1', `>${title}`);
    const rows = this.page.locator(QUICK_INPUT_ROWS);
    const index = await poll(`"${title}" in the command palette`, 10_000, async () => {
      const labels = await rows.evaluateAll((els) => els.map((el) => el.getAttribute('aria-label') ?? ''));
      const i = labels.findIndex((l) => l.startsWith(title));
      return i >= 0 ? i : undefined;
    });
    for (let i = 0; i < index; i++) await this.page.keyboard.press('ArrowDown');
    await this.page.keyboard.press('Enter');
    await this.page
      .locator(QUICK_INPUT)
      .waitFor({ state: 'hidden' })
      .catch(() => undefined);
  }

  /** Opens a workspace file with Quick Open (Ctrl+P) and waits for its editor tab to be the active one. */
  async openFile(name: string): Promise<void> {
    await this.typeInQuickInput('Control+P', name);
    const first = this.page.locator(QUICK_INPUT_ROWS).first();
    await poll(`${name} in Quick Open`, 10_000, async () =>
      ((await first.getAttribute('aria-label').catch(() => null)) ?? '').includes(name) ? true : undefined,
    );
    await this.page.keyboard.press('Enter');
    await this.page.locator(`.tab.active[aria-label^="${name}"]`).first().waitFor({ timeout: 10_000 });
    await this.page.locator('.editor-instance .monaco-editor.focused').first().waitFor({ timeout: 10_000 });
  }

  /** Accessible labels of the rows of the open quick pick (after a command asked for a choice). */
  async quickPickRows(): Promise<Locator> {
    await this.page.locator(QUICK_INPUT_ROWS).first().waitFor({ timeout: 10_000 });
    return this.page.locator(QUICK_INPUT_ROWS);
  }

  /** Labels of the suggest widget's rows, once it shows some. */
  async suggestions(): Promise<string[]> {
    const rows = this.page.locator('.editor-widget.suggest-widget .monaco-list-row');
    await rows.first().waitFor({ timeout: 15_000 });
    return rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /** Rows of the Problems panel (file rows and marker rows), opened with Ctrl+Shift+M. */
  async problems(): Promise<string[]> {
    const panel = this.page.locator('.markers-panel');
    if (!(await panel.isVisible())) await this.page.keyboard.press('Control+Shift+M');
    await panel.waitFor({ timeout: 10_000 });
    return this.page
      .locator('.markers-panel .monaco-list-row')
      .evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /** Shows the Sculpt view container (Runs, Subspace Ranks, Experiments). */
  async showSculpt(): Promise<void> {
    // Decided by whether the Runs pane shows: a click on the item of the container already shown hides the side
    // bar, and the item's own state read as not shown once the Sculpt container was open.
    if (!(await this.viewPane('Runs').isVisible())) await this.activityBarItem('Sculpt').click();
    await this.viewPane('Runs').waitFor({ timeout: 10_000 });
  }

  /** A view's pane in the side bar, by the view's name (its header reads "<name> Section" or "<name> - <description> Section"). */
  viewPane(name: string): Locator {
    return this.page
      .locator('.sidebar .pane')
      .filter({ has: this.page.locator(`.pane-header[aria-label^="${name} "]`) });
  }

  async viewHeader(name: string): Promise<string> {
    return (await this.viewPane(name).locator('.pane-header').getAttribute('aria-label')) ?? '';
  }

  async treeRows(view: string): Promise<TreeRow[]> {
    return this.viewPane(view)
      .locator('.monaco-list-row')
      .evaluateAll((rs) =>
        rs.map((r) => ({
          label: r.querySelector('.label-name')?.textContent ?? '',
          description: r.querySelector('.label-description')?.textContent ?? '',
          aria: r.getAttribute('aria-label') ?? '',
          level: Number(r.getAttribute('aria-level') ?? 0),
          expanded: r.hasAttribute('aria-expanded') ? r.getAttribute('aria-expanded') === 'true' : undefined,
        })),
      );
  }

  /** Waits until a view shows a row that passes `test`, and returns it. */
  async treeRow(view: string, what: string, test: (r: TreeRow) => boolean, timeoutMs = 20_000): Promise<TreeRow> {
    return poll(`${what} in the ${view} view`, timeoutMs, async () => (await this.treeRows(view)).find(test));
  }

  /**
   * Waits until a view shows, among the rows nested under the first row labelled `parent` (which must be
   * expanded), one that passes `test`, and returns it.
   */
  async treeRowUnder(
    view: string,
    parent: string,
    what: string,
    test: (r: TreeRow) => boolean,
    timeoutMs = 20_000,
  ): Promise<TreeRow> {
    return poll(`${what} under "${parent}" in the ${view} view`, timeoutMs, async () => {
      const rows = await this.treeRows(view);
      const i = rows.findIndex((r) => r.label === parent);
      if (i < 0) return undefined;
      const end = rows.findIndex((r, j) => j > i && r.level <= rows[i].level);
      return rows.slice(i + 1, end < 0 ? undefined : end).find(test);
    });
  }

  /** Clicks a tree row by its label (expands or collapses a parent without a command, runs the command of one). */
  async clickTreeRow(view: string, label: string): Promise<void> {
    const rows = this.viewPane(view).locator('.monaco-list-row');
    const labels = await rows.evaluateAll((rs) => rs.map((r) => r.querySelector('.label-name')?.textContent ?? ''));
    const i = labels.indexOf(label);
    if (i < 0) throw new Error(`no row "${label}" in the ${view} view: ${JSON.stringify(labels)}`);
    await rows.nth(i).click();
  }

  /** Labels of the tabs of each editor group, left to right. */
  async editorGroups(): Promise<string[][]> {
    return this.page
      .locator('.editor-group-container')
      .evaluateAll((gs) =>
        gs.map((g) => [...g.querySelectorAll('.tab')].map((t) => t.getAttribute('aria-label') ?? '')),
      );
  }

  /**
   * The content of the visible webview. VS Code nests two frames: the host frame (`iframe.webview.ready`, the
   * workbench's, on its own origin) and the extension's page inside it (`#active-frame`).
   */
  webview(): FrameLocator {
    return this.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  }
}
