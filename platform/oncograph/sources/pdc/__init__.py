"""PDC (Proteomic Data Commons): a GraphQL client and a local stand-in that serves real recorded answers."""

from oncograph.sources.pdc.client import DEFAULT_URL, PdcClient, PdcGraphQLError, PdcPage, PdcRequestError

__all__ = ["DEFAULT_URL", "PdcClient", "PdcGraphQLError", "PdcPage", "PdcRequestError"]
