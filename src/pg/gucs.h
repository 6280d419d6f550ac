// GUC variables (plain C globals, read by the access method).
#pragma once

extern int s5v_ef_search;
extern bool s5v_iterative_scan;
extern int s5v_max_scan_tuples;
extern int s5v_probes;
extern int s5v_max_probes;
extern double s5v_scan_mem_multiplier;
