// Graph's reply shape and its error body, as the simulator's parts write them.

export interface Reply {
	status: number;
	headers?: Record<string, string>;
	body?: unknown;
}

export function graphError(status: number, code: string, message: string): Reply {
	return {status, body: {error: {code, message}}};
}

export function notFound(id: string): Reply {
	return graphError(404, 'ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
}
