export { ApiClient, ApiContractError, ApiRequestError, type ApiClientOptions } from './api-client';
