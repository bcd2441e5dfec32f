from decimal import Decimal

import factory
from stdnum import ean

from catalog.models import Brand, Category, Product, Sku


def ean13(n: int) -> str:
    """A valid EAN-13 for an integer seed (prefix 690: a Chinese GS1 range)."""
    body = f"690{n:09d}"[-12:]
    return body + ean.calc_check_digit(body)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    code = factory.Sequence(lambda n: f"cat{n}")
    name = factory.Sequence(lambda n: f"类目{n}")
    path = factory.LazyAttribute(lambda o: o.code)


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    code = factory.Sequence(lambda n: f"brand{n}")
    name = factory.Sequence(lambda n: f"品牌{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"SPU{n:05d}")
    name = factory.Sequence(lambda n: f"商品{n}")
    category = factory.SubFactory(CategoryFactory)
    brand = factory.SubFactory(BrandFactory)


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    code = factory.Sequence(lambda n: f"SKU{n:06d}")
    barcode = factory.Sequence(lambda n: ean13(n + 1))
    name = factory.LazyAttribute(lambda o: f"{o.product.name} 红色 M")
    color = "红色"
    size = "M"
    list_price = Decimal("99.00")
