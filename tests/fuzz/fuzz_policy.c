// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: a Service's weft.io/ annotations (model/policy.c), which any
 * user allowed to edit a Service writes. The input is "key=value": the pair
 * goes through policy_override_annotation() as the decoder calls it, then
 * the override is applied to the built-in defaults; the value also goes
 * through policy_knob_parse() of every knob, whatever the key.
 */
#include "fuzz.h"
#include "model/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_override o = { 0 };
	struct policy def, out, p;
	char *text = fuzz_str(data, size), *value, why[256];

	value = strchr(text, '=');
	if (value)
		*value++ = '\0';
	else
		value = text;
	policy_builtin(&def);
	(void)policy_override_annotation(&o, text, value, why, sizeof(why));
	policy_apply(&out, &def, &o);
	for (size_t i = 0; i < POLICY_KNOBS; i++) {
		const struct policy_knob *k = &policy_knobs[i];

		p = def;
		if (!policy_knob_parse(k, value, &p))
			(void)policy_knob_value_name(k, policy_knob_get(k, &p));
	}
	free(text);
	return 0;
}
