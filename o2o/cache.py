"""Django's Redis cache backend, with one Redis client per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the (shared) connection
pool for every cache operation; building one copies the client's table of response callbacks and
dispatches a pool event, which costs more CPU than the GET itself.  A POS request reads its session
(and often a cache key) this way, so the client is kept, once per pool.  Behaviour is unchanged: the
same pools, connections, serializer and commands; a ``redis.Redis`` holds no per-call state and does
not own a pool it is given (it never closes it).
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:  # as Django's _get_connection_pool, for this very index
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
