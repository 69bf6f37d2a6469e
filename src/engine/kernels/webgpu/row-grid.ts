/**
 * How row programs (one workgroup per matrix row: norms, cross-entropy) spread rows over workgroups. A dispatch
 * has at most 65535 workgroups in x, so workgroup g handles rows g, g + groups, ...; the trip count is a
 * uniform, which keeps the workgroup barriers inside the loop in uniform control flow, as WGSL requires.
 */
import { WORKGROUP_INDEX, type Uniform } from './program';

export const MAX_WORKGROUPS = 65535;

export function rowGrid(rows: number): { groups: number; perGroup: number } {
  const groups = Math.max(1, Math.min(rows, MAX_WORKGROUPS));
  return { groups, perGroup: Math.ceil(rows / groups) };
}

/** The uniform fields every row program declares first. */
export const ROW_GRID_UNIFORMS = 'rows : i32, cols : i32, groups : i32, rowsPerGroup : i32,';

export function rowGridUniforms(rows: number, cols: number): Uniform[] {
  const { groups, perGroup } = rowGrid(rows);
  return [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [cols] },
    { type: 'int32', data: [groups] },
    { type: 'int32', data: [perGroup] },
  ];
}

/**
 * Opens the per-row loop (the program closes it): `tid`, `row`, `live` (row < rows, false on the last pass of
 * some workgroups), `base` (the row's first element) and the row width under the name `width`.
 */
export function rowLoop(width: string): string {
  return `
  let tid = i32(localIndex);
  let ${width} = uniforms.cols;
  for (var k = 0; k < uniforms.rowsPerGroup; k++) {
    let row = ${WORKGROUP_INDEX} + k * uniforms.groups;
    let live = row < uniforms.rows;
    let base = row * ${width};`;
}
