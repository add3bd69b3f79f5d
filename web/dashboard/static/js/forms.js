// A form for a command's parameters, generated from the JSON schema /api/v1/command-types
// publishes: enums become selects, integers number inputs, patterned strings text inputs.

import { h } from "./dom.js";

const NUMBER = /^-?\d+(\.\d+)?$/;

function typesOf(schema) {
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

// suggestions: {parameterName: [{value, label}]}, offered in a datalist (e.g. the ECUs).
export function parameterFields(container, schema, suggestions = {}) {
  const required = new Set(schema.required || []);
  const fields = [];
  const nodes = [];
  for (const [name, property] of Object.entries(schema.properties || {})) {
    const id = `param-${name}`;
    const optional = !required.has(name);
    const describedBy = property.description ? `${id}-hint` : undefined;
    let input;
    if (Array.isArray(property.enum)) {
      input = h(
        "select",
        { id, name, "aria-describedby": describedBy },
        optional ? h("option", { value: "", text: "(not set)" }) : null,
        property.enum.map((value) => h("option", { value, text: value })),
      );
      if (property.default !== undefined) input.value = property.default;
    } else {
      const integer = typesOf(property).includes("integer");
      input = h("input", {
        id,
        name,
        type: integer ? "number" : "text",
        step: integer ? 1 : undefined,
        min: property.minimum,
        max: property.maximum,
        pattern: property.pattern ? property.pattern.replace(/^\^/, "").replace(/\$$/, "") : undefined,
        placeholder: property.default !== undefined ? String(property.default) : undefined,
        required: !optional,
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": describedBy,
      });
      const offered = suggestions[name];
      if (offered && offered.length > 0) {
        const list = h("datalist", { id: `${id}-options` }, offered.map((option) => h("option", { value: option.value, label: option.label })));
        input.setAttribute("list", list.id);
        nodes.push(list);
        if (!optional) input.value = offered[0].value;
      }
    }
    nodes.push(
      h("label", { for: id, text: optional ? `${name} (optional)` : name }),
      input,
      property.description ? h("p", { id: describedBy, class: "hint", text: property.description }) : null,
    );
    fields.push({ name, property, input, optional });
  }
  container.replaceChildren(...nodes.filter(Boolean));

  // The parameters as the API takes them; throws with the first invalid field focused.
  return function collect() {
    const params = {};
    for (const { name, property, input, optional } of fields) {
      const text = input.value.trim();
      if (text === "") {
        if (optional) continue;
        input.focus();
        throw new Error(`${name} is required`);
      }
      if (!input.checkValidity()) {
        input.focus();
        throw new Error(`${name}: ${input.validationMessage}`);
      }
      const types = typesOf(property);
      if (types.includes("integer")) params[name] = Number.parseInt(text, 10);
      else if (types.includes("number") && NUMBER.test(text)) params[name] = Number(text);
      else params[name] = text;
    }
    return params;
  };
}
