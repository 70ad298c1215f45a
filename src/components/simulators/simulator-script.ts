/**
 * What the simulators' scripts share. Each figure is complete without JavaScript; its script wires
 * the controls, then swaps the no-JavaScript note for them.
 */

/** A slider that steps through `values`; its position is the index (fan-out, stampede). */
export interface SliderSpec<Name extends string = string> {
  name: Name;
  label: string;
  values: readonly number[];
  defaultValue: number;
  format: (value: number) => string;
}

/** The no-JavaScript note's list of the defaults the figure was computed with. */
export const defaultsSentence = (controls: readonly SliderSpec[]) =>
  controls.map((control) => `${control.label}: ${control.format(control.defaultValue)}`).join('; ');

/** Runs `setup` on every figure of this simulator, then shows its controls in place of the note. */
export function mountSimulators(name: string, setup: (figure: HTMLElement, form: HTMLFormElement) => void): void {
  for (const figure of document.querySelectorAll<HTMLElement>(`figure[data-simulator="${name}"]`)) {
    const form = figure.querySelector('form')!;
    setup(figure, form);
    form.addEventListener('submit', (event) => event.preventDefault());
    form.hidden = false;
    figure.querySelector<HTMLElement>('[data-fallback]')!.hidden = true;
  }
}

/**
 * Keeps each slider's output and aria-valuetext in step with it, and calls `render` with every
 * slider's value after each move and once at the start.
 */
export function bindSliders<Name extends string>(
  form: HTMLFormElement,
  controls: readonly SliderSpec<Name>[],
  render: (values: Record<Name, number>) => void,
): void {
  const values = Object.fromEntries(controls.map((c) => [c.name, c.defaultValue])) as Record<Name, number>;
  for (const control of controls) {
    const slider = form.querySelector<HTMLInputElement>(`input[name="${control.name}"]`)!;
    const output = form.querySelector<HTMLOutputElement>(`[data-output="${control.name}"]`)!;
    const read = () => {
      const value = control.values[Number(slider.value)] ?? control.defaultValue;
      values[control.name] = value;
      output.textContent = control.format(value);
      slider.setAttribute('aria-valuetext', control.format(value));
    };
    slider.addEventListener('input', () => {
      read();
      render(values);
    });
    // A back-navigation can restore slider positions; start from what the page shows.
    read();
  }
  render(values);
}
