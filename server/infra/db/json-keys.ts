/**
 * `column = any(…)` over the keys of a JSON array parameter (`?`), in a type: the keys of a batched
 * read. Written `column in (select json_array_elements_text(?))`, the planner expected the default
 * hundred rows of a set-returning function and, on a table of a few thousand rows, hashed them
 * against the whole table: every cold room's lookup, and every reconnect's read of its room's
 * position, read all the rooms. An array of the keys is looked up in the column's index.
 */
export const inJsonKeys = (column: string, type: 'text' | 'uuid') => `${column} = any(array(select json_array_elements_text(?::json)::${type}))`;
